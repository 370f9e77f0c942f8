package schemas

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// csvDecoder reads canonical CDRs as CSV. The first non-blank line is a
// header naming each column with a canonical field name (any case, spaces
// trimmed); columns with other names are ignored. Each record is one line
// (see splitCSV) with as many fields as the header; an empty value means
// absent. Strings alias the decoder's buffers until the next Decode.
type csvDecoder struct {
	lines  lineReader
	opts   DecodeOptions
	cols   []int // field index of each column, -1 for ignored columns
	header bool
	err    error // sticky header error
	fields [][]byte
	arena  []byte
}

func newCSVDecoder(r io.Reader, opts DecodeOptions) *csvDecoder {
	d := &csvDecoder{opts: opts, arena: make([]byte, 0, 256)}
	d.lines.init(r, opts.MaxRecordBytes)
	return d
}

// Decode implements Decoder. A bad header is an error that is not a
// *RecordError: the input cannot be read.
func (d *csvDecoder) Decode(c *CDR) error {
	if d.err != nil {
		return d.err
	}
	if !d.header {
		if err := d.readHeader(); err != nil {
			if err != io.EOF {
				d.err = err
			}
			return err
		}
	}
	for {
		line, err := d.lines.next()
		if err != nil {
			return d.lines.wrapError(err, "csv")
		}
		if isBlank(line) {
			continue
		}
		d.arena = d.arena[:0]
		var problem string
		d.fields, problem = splitCSV(d.fields, &d.arena, line)
		if problem != "" {
			return d.lines.recordError(&FieldError{Field: "csv", Problem: problem})
		}
		if len(d.fields) != len(d.cols) {
			return d.lines.recordError(&FieldError{Field: "csv", Problem: strconv.Itoa(len(d.fields)) +
				" fields where the header has " + strconv.Itoa(len(d.cols))})
		}
		c.Reset()
		for i, f := range d.fields {
			if idx := d.cols[i]; idx >= 0 {
				if err := setTextField(c, idx, f, d.opts.Plan, d.opts.Location, &d.arena); err != nil {
					return d.lines.recordError(err)
				}
			}
		}
		if err := c.Finalize(); err != nil {
			return d.lines.recordError(err)
		}
		return nil
	}
}

func (d *csvDecoder) readHeader() error {
	var line []byte
	for {
		var err error
		line, err = d.lines.next()
		if err == errTooLong {
			return fmt.Errorf("csv header at line %d: longer than %d bytes", d.lines.line, d.lines.max)
		}
		if err != nil {
			return d.lines.wrapError(err, "csv")
		}
		if !isBlank(line) {
			break
		}
	}
	var problem string
	d.fields, problem = splitCSV(d.fields, &d.arena, line)
	if problem != "" {
		return fmt.Errorf("csv header at line %d: %s", d.lines.line, problem)
	}
	var seen [numFields]bool
	d.cols = make([]int, len(d.fields))
	for i, f := range d.fields {
		name := strings.ToLower(string(trimSpace(f)))
		idx := fieldIndex([]byte(name))
		d.cols[i] = idx
		if idx < 0 {
			continue
		}
		if seen[idx] {
			return fmt.Errorf("csv header at line %d: column %q appears twice", d.lines.line, name)
		}
		seen[idx] = true
	}
	var missing []string
	for _, idx := range requiredFields {
		if !seen[idx] {
			missing = append(missing, cdrFields[idx])
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("csv header at line %d: missing required columns: %s", d.lines.line, strings.Join(missing, ", "))
	}
	d.header = true
	return nil
}
