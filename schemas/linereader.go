package schemas

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// errTooLong is lineReader's signal that it skipped a line longer than its
// limit.
var errTooLong = errors.New("line too long")

// lineReader reads lines with a reusable buffer, tracking line numbers and
// byte offsets. Lines longer than max are skipped without being buffered
// whole. A UTF-8 byte order mark before the first line is dropped.
type lineReader struct {
	br   *bufio.Reader
	max  int
	long []byte // a line longer than br's buffer, assembled
	line int64  // 1-based number of the line last returned
	off  int64  // byte offset of that line's start
	end  int64  // byte offset just after it
	err  error  // sticky: io.EOF or a read error
}

func (r *lineReader) init(rd io.Reader, max int) {
	r.br = bufio.NewReaderSize(rd, 64<<10)
	r.max = max
}

// next returns the next line without its "\n" or "\r\n". The line is valid
// until the next call. Errors: io.EOF at the end, errTooLong for a line
// that was skipped, or the reader's error.
func (r *lineReader) next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	r.line++
	r.off = r.end
	buf, err := r.br.ReadSlice('\n')
	r.end += int64(len(buf))
	if err == bufio.ErrBufferFull {
		// Longer than bufio's buffer: assemble it in r.long, or drop it
		// once it passes the limit (+2 for "\r\n").
		tooLong := len(buf) > r.max+2
		r.long = r.long[:0]
		if !tooLong {
			r.long = append(r.long, buf...)
		}
		for err == bufio.ErrBufferFull {
			buf, err = r.br.ReadSlice('\n')
			r.end += int64(len(buf))
			if !tooLong && len(r.long)+len(buf) > r.max+2 {
				tooLong = true
				r.long = r.long[:0]
			}
			if !tooLong {
				r.long = append(r.long, buf...)
			}
		}
		if err != nil {
			r.err = err
			if err != io.EOF {
				return nil, err
			}
		}
		if tooLong {
			return nil, errTooLong
		}
		buf = r.long
	} else if err != nil {
		r.err = err
		if err != io.EOF {
			return nil, err
		}
		if len(buf) == 0 {
			r.line--
			return nil, io.EOF
		}
	}
	if n := len(buf); n > 0 && buf[n-1] == '\n' {
		buf = buf[:n-1]
		if n > 1 && buf[n-2] == '\r' {
			buf = buf[:n-2]
		}
	}
	if len(buf) > r.max {
		return nil, errTooLong
	}
	if r.off == 0 && len(buf) >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF {
		buf = buf[3:]
	}
	return buf, nil
}

// recordError locates err at the line last returned.
func (r *lineReader) recordError(err error) *RecordError {
	return &RecordError{Line: r.line, Offset: r.off, Err: err}
}

// wrapError turns an error from next into Decode's error: io.EOF as is, a
// skipped long line as a *RecordError about field, a read error wrapped.
func (r *lineReader) wrapError(err error, field string) error {
	switch err {
	case io.EOF:
		return io.EOF
	case errTooLong:
		return r.recordError(&FieldError{Field: field, Problem: "record longer than " + strconv.Itoa(r.max) + " bytes"})
	}
	return fmt.Errorf("read line %d: %w", r.line, err)
}
