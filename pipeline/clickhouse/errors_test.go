package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
)

func TestClassify(t *testing.T) {
	ex := func(code int32) error { return fmt.Errorf("insert: %w", &ch.Exception{Code: code, Message: "x"}) }
	f := func(err error, want errorKind) {
		t.Helper()
		if got := classify(err); got != want {
			t.Errorf("classify(%v) = %d, want %d", err, got, want)
		}
	}
	f(ex(codeNoSuchColumnInTable), kindSchema)
	f(ex(codeUnknownTable), kindSchema)
	f(ex(codeUnknownDatabase), kindSchema)
	f(ex(codeTypeMismatch), kindSchema)
	f(ex(codeTooManyParts), kindTransient)
	f(ex(codeTooManySimultaneousQueries), kindTransient)
	f(ex(codeTimeoutExceeded), kindTransient)
	f(ex(codeMemoryLimitExceeded), kindTransient)
	f(ex(codeTableIsReadOnly), kindTransient)
	f(ex(codeKeeperException), kindTransient)
	f(ex(62), kindPermanent)  // syntax error
	f(ex(497), kindPermanent) // access denied
	f(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, kindTransient)
	f(fmt.Errorf("read: %w", syscall.ECONNRESET), kindTransient)
	f(fmt.Errorf("handshake: %w", io.EOF), kindTransient)
	f(fmt.Errorf("write: %w", syscall.EPIPE), kindTransient)
	f(ch.ErrAcquireConnTimeout, kindTransient)
	f(context.DeadlineExceeded, kindTransient)
	f(context.Canceled, kindPermanent)
	f(&ch.OpError{Op: "AppendRow", ColumnName: "calls", Err: &column.ColumnConverterError{Op: "Append", To: "String", From: "[]uint32"}}, kindSchema)
	f(&column.ColumnConverterError{Op: "Append", To: "String", From: "[]uint32"}, kindSchema)
	f(errors.New("something else"), kindPermanent)
}

func TestSchemaErrorWraps(t *testing.T) {
	server := &ch.Exception{Code: codeNoSuchColumnInTable, Message: "No such column talk_s"}
	err := error(&schemaError{table: "db.caller_minute", err: server})
	var got *ch.Exception
	if !errors.Is(err, ErrSchema) || !errors.As(err, &got) || got.Code != codeNoSuchColumnInTable {
		t.Errorf("schemaError does not wrap both ErrSchema and the server's error: %v", err)
	}
}
