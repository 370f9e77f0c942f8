package clickhouse

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

// Sentinel errors.
var (
	// ErrSchema marks a write the server refused because its tables do not
	// match what this cdrguard writes (a missing table or column, a type
	// mismatch): run `cdrguard migrate`. It is never retried.
	ErrSchema = errors.New(`clickhouse schema does not match this cdrguard version: run "cdrguard migrate"`)
	// ErrClosed is returned by writes to a closed Sink.
	ErrClosed = errors.New("clickhouse sink is closed")
)

// ClickHouse server error codes (src/Common/ErrorCodes.cpp).
const (
	codeThereIsNoColumn            = 8
	codeNotFoundColumnInBlock      = 10
	codeNoSuchColumnInTable        = 16
	codeNumberOfColumnsDoesntMatch = 20
	codeUnexpectedEndOfFile        = 3
	codeCannotReadAllData          = 33
	codeAttemptToReadAfterEOF      = 32
	codeIllegalColumn              = 44
	codeUnknownIdentifier          = 47
	codeUnknownType                = 50
	codeTypeMismatch               = 53
	codeUnknownTable               = 60
	codeCannotConvertType          = 70
	codeUnknownDatabase            = 81
	codeTimeoutExceeded            = 159
	codeCannotAllocateMemory       = 173
	codeTooManySimultaneousQueries = 202
	codeNoFreeConnection           = 203
	codeSocketTimeout              = 209
	codeNetworkError               = 210
	codeNoZooKeeper                = 225
	codeAborted                    = 236
	codeMemoryLimitExceeded        = 241
	codeTableIsReadOnly            = 242
	codeTooManyParts               = 252
	codeAllConnectionTriesFailed   = 279
	codeTooFewLiveReplicas         = 285
	codeUnsatisfiedQuorum          = 286
	codeUnknownStatusOfInsert      = 319
	codeQueryWasCancelled          = 394
	codeSystemError                = 425
	codeCannotScheduleTask         = 439
	codeKeeperException            = 999
)

// schemaCodes are server errors that mean the tables do not match the
// rows cdrguard writes.
var schemaCodes = map[int32]bool{
	codeThereIsNoColumn: true, codeNotFoundColumnInBlock: true, codeNoSuchColumnInTable: true,
	codeNumberOfColumnsDoesntMatch: true, codeIllegalColumn: true, codeUnknownIdentifier: true,
	codeUnknownType: true, codeTypeMismatch: true, codeUnknownTable: true,
	codeCannotConvertType: true, codeUnknownDatabase: true,
}

// transientCodes are server errors that go away by themselves: overload,
// timeouts, network trouble, ZooKeeper/Keeper hiccups, too many parts.
var transientCodes = map[int32]bool{
	codeUnexpectedEndOfFile: true, codeAttemptToReadAfterEOF: true, codeCannotReadAllData: true,
	codeTimeoutExceeded: true, codeCannotAllocateMemory: true, codeTooManySimultaneousQueries: true,
	codeNoFreeConnection: true, codeSocketTimeout: true, codeNetworkError: true, codeNoZooKeeper: true,
	codeAborted: true, codeMemoryLimitExceeded: true, codeTableIsReadOnly: true, codeTooManyParts: true,
	codeAllConnectionTriesFailed: true, codeTooFewLiveReplicas: true, codeUnsatisfiedQuorum: true,
	codeUnknownStatusOfInsert: true, codeQueryWasCancelled: true, codeSystemError: true,
	codeCannotScheduleTask: true, codeKeeperException: true,
}

// errorKind sorts a failed insert.
type errorKind int

const (
	kindPermanent errorKind = iota // report to the writer
	kindSchema                     // report with ErrSchema
	kindTransient                  // retry
)

// classify sorts an insert error: transient (retry), schema (tell the
// operator to migrate) or permanent (anything else: report it). Errors
// not known to be transient are not retried, so an unexpected failure
// surfaces instead of blocking the pipeline silently.
func classify(err error) errorKind {
	var ex *ch.Exception
	if errors.As(err, &ex) {
		switch {
		case schemaCodes[ex.Code]:
			return kindSchema
		case transientCodes[ex.Code]:
			return kindTransient
		}
		return kindPermanent
	}
	var opErr *ch.OpError
	if errors.As(err, &opErr) {
		return kindSchema // a value the column's type cannot take
	}
	var convErr *column.ColumnConverterError
	var typeErr *column.UnsupportedColumnTypeError
	if errors.As(err, &convErr) || errors.As(err, &typeErr) {
		return kindSchema
	}
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded): // a per-insert timeout; the caller checks its own ctx
		return kindTransient
	case errors.Is(err, context.Canceled):
		return kindPermanent
	case errors.As(err, &netErr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, net.ErrClosed), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, ch.ErrAcquireConnTimeout), errors.Is(err, ch.ErrConnectionClosed):
		return kindTransient
	}
	return kindPermanent
}

// schemaError wraps a server's refusal of a write with ErrSchema.
type schemaError struct {
	table string
	err   error
}

func (e *schemaError) Error() string {
	return fmt.Sprintf("cannot write to clickhouse table %s: %v: the table does not match this cdrguard version; run \"cdrguard migrate\"", e.table, e.err)
}

// Unwrap lets errors.Is find both ErrSchema and the server's error.
func (e *schemaError) Unwrap() []error { return []error{ErrSchema, e.err} }
