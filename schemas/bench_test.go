package schemas

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"
)

// benchRecords returns canonical records like those the generator emits:
// short unanswered robocalls, answered calls, busy and rejected attempts,
// mobile originated calls with IMSI/IMEI/cell, calls with a source IP.
func benchRecords() [][]byte {
	const base = 1793610904123 // 2026-11-02T09:15:04.123Z
	var recs [][]byte
	for i := 0; i < 64; i++ {
		start := int64(base + i*1377)
		t := func(off int64) string {
			b, _ := appendRFC3339MS(nil, start+off)
			return string(b)
		}
		var s string
		switch i % 6 {
		case 0, 1:
			s = fmt.Sprintf(`{"call_id":"c-%06d","caller":"+1555012%04d","callee":"+1555987%04d","start_time":"%s","end_time":"%s","duration_s":0,"disposition":"no_answer","cause_code":19,"trunk":"tr-acme-01","attestation":"B"}`,
				i, i%7, 6543+i, t(0), t(5333))
		case 2:
			s = fmt.Sprintf(`{"call_id":"c-%06d","caller":"+1555012%04d","callee":"+1555987%04d","start_time":"%s","answer_time":"%s","end_time":"%s","duration_s":%d,"disposition":"answered","cause_code":16,"trunk":"tr-acme-01","source_ip":"203.0.113.%d","attestation":"B"}`,
				i, i%7, 6543+i, t(0), t(4000), t(4000+int64(i)*1000), i, i%250)
		case 3:
			s = fmt.Sprintf(`{"call_id":"c-%06d","caller":"+4477009%05d","callee":"+4477009%05d","start_time":"%s","answer_time":"%s","end_time":"%s","duration_s":%d,"disposition":"answered","cause_code":16,"imsi":"2341509999%05d","imei":"4901542032%05d","cell_id":"234-15-1234-%04d"}`,
				i, i, 500+i, t(0), t(7000), t(7000+int64(i)*3000), i*3, i, i, i)
		case 4:
			s = fmt.Sprintf(`{"call_id":"c-%06d","caller":"+1555017%04d","callee":"+1555987%04d","start_time":"%s","end_time":"%s","disposition":"busy","cause_code":17,"trunk":"tr-cheapvoip-02","source_ip":"198.51.100.%d","attestation":"C"}`,
				i, i%3, 6543+i, t(0), t(600), i%250)
		case 5:
			s = fmt.Sprintf(`{"call_id":"c-%06d","caller":"+1555017%04d","callee":"+1555987%04d","start_time":"%s","end_time":"%s","disposition":"rejected","cause_code":21,"trunk":"tr-cheapvoip-02","source_ip":"198.51.100.%d","attestation":"C"}`,
				i, i%3, 6543+i, t(0), t(6000), i%250)
		}
		recs = append(recs, []byte(s))
	}
	return recs
}

// benchStream returns n records as jsonl.
func benchStream(n int) []byte {
	recs := benchRecords()
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		b.Write(recs[i%len(recs)])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func avgLen(recs [][]byte) int64 {
	var n int
	for _, r := range recs {
		n += len(r)
	}
	return int64(n / len(recs))
}

func reportRecords(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkJSONParse(b *testing.B) {
	recs := benchRecords()
	p := JSONParser{Plan: ukPlan}
	var c CDR
	b.ReportAllocs()
	b.SetBytes(avgLen(recs))
	for i := 0; b.Loop(); i++ {
		if err := p.Parse(&c, recs[i%len(recs)]); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b)
}

// BenchmarkJSONDecode measures the jsonl Decoder over an in-memory reader.
func BenchmarkJSONDecode(b *testing.B) {
	const n = 4096
	stream := benchStream(n)
	dec, err := NewDecoder("jsonl", &loopReader{data: stream}, DecodeOptions{Plan: ukPlan})
	if err != nil {
		b.Fatal(err)
	}
	var c CDR
	b.ReportAllocs()
	b.SetBytes(int64(len(stream) / n))
	for b.Loop() {
		if err := dec.Decode(&c); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b)
}

func BenchmarkAppendJSON(b *testing.B) {
	recs := benchRecords()
	cdrs := make([]CDR, len(recs))
	var p JSONParser
	for i, r := range recs {
		if err := p.Parse(&cdrs[i], r); err != nil {
			b.Fatal(err)
		}
		cdrs[i] = cdrs[i].Clone()
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(avgLen(recs))
	for i := 0; b.Loop(); i++ {
		buf = AppendJSON(buf[:0], &cdrs[i%len(cdrs)])
	}
	reportRecords(b)
}

// benchDecoder measures a Decoder over a testdata file repeated to n
// records' worth.
func benchDecoder(b *testing.B, format, path string, opts DecodeOptions, skipHeader bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var header []byte
	body := data
	if skipHeader {
		i := bytes.IndexByte(data, '\n')
		header, body = data[:i+1], data[i+1:]
	}
	var stream bytes.Buffer
	stream.Write(header)
	for stream.Len() < 1<<20 {
		stream.Write(body)
	}
	// Count the records in one pass.
	count := 0
	dec, _ := NewDecoder(format, bytes.NewReader(stream.Bytes()), opts)
	var c CDR
	for {
		err := dec.Decode(&c)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		count++
	}
	if skipHeader {
		// Loop over the body only, after the header.
		dec, _ = NewDecoder(format, io.MultiReader(bytes.NewReader(header), &loopReader{data: stream.Bytes()[len(header):]}), opts)
	} else {
		dec, _ = NewDecoder(format, &loopReader{data: stream.Bytes()}, opts)
	}
	b.ReportAllocs()
	b.SetBytes(int64(stream.Len() / count))
	for b.Loop() {
		if err := dec.Decode(&c); err != nil {
			b.Fatal(err)
		}
	}
	reportRecords(b)
}

func BenchmarkCSVDecode(b *testing.B) {
	benchDecoder(b, "csv", "testdata/cdrs.csv", DecodeOptions{Plan: ukPlan}, true)
}

func BenchmarkAsteriskDecode(b *testing.B) {
	benchDecoder(b, "asterisk", "testdata/Master.csv", DecodeOptions{Plan: usPlan}, false)
}

func BenchmarkFreeSWITCHDecode(b *testing.B) {
	benchDecoder(b, "freeswitch", "testdata/freeswitch.json", DecodeOptions{Plan: usPlan}, false)
}

// loopReader reads data over and over, without end.
type loopReader struct {
	data []byte
	pos  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.pos:])
	r.pos = (r.pos + n) % len(r.data)
	return n, nil
}
