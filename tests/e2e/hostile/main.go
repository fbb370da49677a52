// Command hostile is weir's hostile-record client: a Kafka client (franz-go)
// that shares no code with weir's librdkafka and, unlike the Java and
// aiokafka clients, can write header keys that are not UTF-8.
//
//	hostile create  --brokers B --partitions P [--config k=v]... TOPIC...
//	hostile produce --brokers B --topic T --partitions P --seed S --count N --inputs FILE
//	hostile check   --brokers B --input T --output O --dead-letter D --inputs FILE [--once]
//
// produce writes N arbitrary records from the seed and saves them to FILE as
// JSON lines (byte fields base64, null kept apart from empty), each with its
// partition, offset and where weir's JSON-schema validator must put it:
// "output", or the dead letter's weir.error.kind. check reads the output and
// dead-letter topics to their end (read_committed) and exits 1 naming every
// input that is missing, misplaced or changed, and every record that is no
// input's.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Header is a record header; Value nil is a null value.
type Header struct {
	Key   []byte `json:"key"`
	Value []byte `json:"value"`
}

// Input is one produced record and where it must end up.
type Input struct {
	Index     int      `json:"index"`
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Timestamp int64    `json:"timestamp"`
	Key       []byte   `json:"key"`
	Value     []byte   `json:"value"`
	Headers   []Header `json:"headers"`
	Expect    string   `json:"expect"`
}

func (in *Input) name() string {
	return fmt.Sprintf("input #%d (partition %d offset %d)", in.Index, in.Partition, in.Offset)
}

// The headers weir appends to a dead letter, after the original ones.
var weirHeaders = []string{"weir.error.kind", "weir.error.reason", "weir.source.topic",
	"weir.source.partition", "weir.source.offset", "weir.pipeline", "weir.plugin"}

func main() {
	if len(os.Args) < 2 {
		fail(2, "usage: hostile create|produce|check [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	brokers := fs.String("brokers", "", "bootstrap servers, comma-separated")
	partitions := fs.Int("partitions", 4, "partitions of a created topic, or of the input to spread records over")
	var configs []string
	fs.Func("config", "a created topic's config k=v (repeatable)", func(s string) error {
		configs = append(configs, s)
		return nil
	})
	topic := fs.String("topic", "", "topic to produce to")
	seed := fs.Uint64("seed", 1, "seed of the records")
	count := fs.Int("count", 3000, "records to produce")
	maxBytes := fs.Int("max-bytes", 1048588, "the input topic's max.message.bytes")
	inputs := fs.String("inputs", "", "JSON-lines file of the produced records")
	input := fs.String("input", "", "the pipeline's input topic")
	output := fs.String("output", "", "the pipeline's output topic")
	dead := fs.String("dead-letter", "", "the pipeline's dead-letter topic")
	once := fs.Bool("once", false, "fail on a duplicate (exactly-once)")
	idle := fs.Duration("idle", 5*time.Second, "check: the read ends after this long without a record")
	fs.Parse(os.Args[2:])
	seeds := kgo.SeedBrokers(strings.Split(*brokers, ",")...)
	switch os.Args[1] {
	case "create":
		create(seeds, int32(*partitions), configs, fs.Args())
	case "produce":
		produce(seeds, *topic, int32(*partitions), *seed, *count, *maxBytes, *inputs)
	case "check":
		os.Exit(check(seeds, *input, *output, *dead, *inputs, *once, *idle))
	default:
		fail(2, "unknown mode %q: create, produce or check", os.Args[1])
	}
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "hostile: "+format+"\n", args...)
	os.Exit(code)
}

func client(opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		fail(2, "client: %v", err)
	}
	return cl
}

func create(seeds kgo.Opt, partitions int32, configs, topics []string) {
	cl := client(seeds)
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t, partitions, 1
		for _, kv := range configs {
			k, v, _ := strings.Cut(kv, "=")
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		fail(1, "creating topics: %v", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			fail(1, "creating topic %s: %v %s", t.Topic, err, deref(t.ErrorMessage))
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// gen makes arbitrary records from a seed.
type gen struct{ r *rand.Rand }

func (g gen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.UintN(256))
	}
	return b
}

// field is a key, value or header value: null, empty, or random bytes.
func (g gen) field(max int) []byte {
	switch g.r.IntN(10) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	return g.bytes(1 + g.r.IntN(max))
}

// text is valid UTF-8: mostly ASCII, some multi-byte and control runes.
func (g gen) text(n int) string {
	var b strings.Builder
	for range n {
		switch x := g.r.IntN(100); {
		case x < 70:
			b.WriteRune(rune(0x20 + g.r.IntN(0x5f)))
		case x < 75:
			b.WriteRune(rune(1 + g.r.IntN(0x1f)))
		case x < 90:
			b.WriteRune(rune(0x80 + g.r.IntN(0x780)))
		default:
			r := rune(0x800 + g.r.IntN(0x10ffff-0x800))
			if utf8.ValidRune(r) {
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// headerKey never holds a NUL (librdkafka reads header names as C strings).
// raw keys are random bytes, and raw ones are made not UTF-8 often.
func (g gen) headerKey(raw bool) []byte {
	if raw {
		k := g.bytes(g.r.IntN(24))
		for i := range k {
			if k[i] == 0 || g.r.IntN(8) == 0 {
				k[i] = 0xff
			}
		}
		return k
	}
	switch g.r.IntN(10) {
	case 0:
		return []byte{}
	case 1: // looks like weir's own: the appended ones must still be told apart
		return []byte(weirHeaders[g.r.IntN(len(weirHeaders))])
	case 2, 3:
		return []byte(g.text(1 + g.r.IntN(16)))
	}
	return fmt.Appendf(nil, "h-%d", g.r.IntN(50))
}

func (g gen) headers(n int, raw bool) []Header {
	hs := make([]Header, n)
	for i := range hs {
		hs[i].Key = g.headerKey(raw)
		hs[i].Value = g.field(64)
		if g.r.IntN(50) == 0 {
			hs[i].Value = g.bytes(g.r.IntN(4096))
		}
	}
	return hs
}

func (g gen) timestamp(now int64) int64 {
	switch g.r.IntN(10) {
	case 0:
		return 0
	case 1: // 1970 to 2001
		return 1 + g.r.Int64N(1e12)
	case 2: // ahead, within the broker's log.message.timestamp.after.max.ms (1 h)
		return now + 1 + g.r.Int64N(30*60*1000)
	case 3: // up to five years back
		return now - g.r.Int64N(5*365*86400*1000)
	}
	return now
}

// order is a value the validator accepts ({"id": integer, "text": string}),
// unique by its id, padded with ASCII to `size` bytes when size is larger.
func order(id int, text string, size int) []byte {
	v, _ := json.Marshal(map[string]any{"id": id, "text": text})
	if pad := size - len(v); pad > 0 {
		v, _ = json.Marshal(map[string]any{"id": id, "text": text + strings.Repeat("x", pad)})
	}
	return v
}

func varintLen(n int) int {
	u := uint64(n<<1) ^ uint64(n>>63)
	l := 1
	for u >= 0x80 {
		u >>= 7
		l++
	}
	return l
}

// batchSize is the bytes of a record batch holding only this record, as the
// broker compares them to max.message.bytes.
func batchSize(key, value []byte, headers []Header) int {
	field := func(b []byte) int {
		if b == nil {
			return varintLen(-1)
		}
		return varintLen(len(b)) + len(b)
	}
	body := 1 + 1 + 1 + field(key) + field(value) + varintLen(len(headers))
	for _, h := range headers {
		body += varintLen(len(h.Key)) + len(h.Key) + field(h.Value)
	}
	return 61 + varintLen(body) + body
}

// record makes input i. Two in a hundred are within 64 bytes of the limit
// (franz-go counts 4 bytes more than the broker), one of them an order; a
// third of the others are orders; a quarter have raw header keys.
func (g gen) record(i int, now int64, maxBytes int) *Input {
	in := &Input{Index: i, Timestamp: g.timestamp(now), Key: g.field(32)}
	big := i%100 == 1 || i%100 == 51
	isOrder := i%3 == 0 && !big || i%100 == 51
	n := 0
	switch x := g.r.IntN(100); {
	case big:
		n = g.r.IntN(10)
	case x < 25:
	case x < 97:
		n = 1 + g.r.IntN(100)
	default:
		n = 1000 + g.r.IntN(200)
	}
	in.Headers = g.headers(n, g.r.IntN(4) == 0)
	size := 0
	if g.r.IntN(20) == 0 {
		size = 1024 + g.r.IntN(100*1024)
	}
	switch {
	case big:
		target := maxBytes - 4 - g.r.IntN(64)
		if g.r.IntN(2) == 0 {
			in.Key = g.bytes(g.r.IntN(target / 2))
		}
		size = target - batchSize(in.Key, nil, in.Headers)
		for {
			if isOrder {
				in.Value = order(i, "", size)
			} else {
				in.Value = g.bytes(size)
			}
			if batchSize(in.Key, in.Value, in.Headers) <= target {
				break
			}
			size--
		}
	case isOrder:
		in.Value = order(i, g.text(g.r.IntN(40)), size)
	case size > 0:
		in.Value = g.bytes(size)
	default:
		in.Value = g.field(512)
	}
	in.Expect = expect(in)
	return in
}

// expect is where weir must put the record: a header key that is not UTF-8
// is dead-lettered before any plugin sees it; else the validator decides.
func expect(in *Input) string {
	for _, h := range in.Headers {
		if !utf8.Valid(h.Key) {
			return "header-not-utf8"
		}
	}
	if accepted(in.Value) {
		return "output"
	}
	return "invalid"
}

// accepted is the plugin's schema: an object with an integer id and a string text.
func accepted(v []byte) bool {
	if !utf8.Valid(v) || !json.Valid(v) || !bytes.HasPrefix(bytes.TrimLeft(v, " \t\r\n"), []byte("{")) {
		return false
	}
	var o map[string]json.RawMessage
	if json.Unmarshal(v, &o) != nil {
		return false
	}
	_, err := strconv.ParseInt(string(o["id"]), 10, 64)
	var s string
	return err == nil && json.Unmarshal(o["text"], &s) == nil && o["text"][0] == '"'
}

func produce(seeds kgo.Opt, topic string, partitions int32, seed uint64, count, maxBytes int, path string) {
	cl := client(seeds, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(int32(maxBytes)))
	defer cl.Close()
	g := gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	now := time.Now().UnixMilli()
	inputs := make([]*Input, count)
	var mu sync.Mutex
	var errs []string
	for i := range inputs {
		in := g.record(i, now, maxBytes)
		inputs[i] = in
		r := &kgo.Record{Key: in.Key, Value: in.Value, Partition: g.r.Int32N(partitions),
			Timestamp: time.UnixMilli(in.Timestamp)}
		for _, h := range in.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: string(h.Key), Value: h.Value})
		}
		cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			in.Partition, in.Offset = r.Partition, r.Offset
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", in.name(), err))
			}
		})
	}
	if err := cl.Flush(context.Background()); err != nil {
		fail(1, "flush: %v", err)
	}
	if len(errs) > 0 {
		fail(1, "%d records not produced:\n%s", len(errs), strings.Join(errs, "\n"))
	}
	f, err := os.Create(path)
	if err != nil {
		fail(2, "%v", err)
	}
	w := bufio.NewWriter(f)
	ends := map[string]int64{}
	for p := range partitions {
		ends[strconv.Itoa(int(p))] = 0
	}
	for _, in := range inputs {
		line, _ := json.Marshal(in)
		w.Write(append(line, '\n'))
		p := strconv.Itoa(int(in.Partition))
		ends[p] = max(ends[p], in.Offset+1)
	}
	if err := errors.Join(w.Flush(), f.Close()); err != nil {
		fail(2, "%v", err)
	}
	out, _ := json.Marshal(map[string]any{"produced": count, "ends": ends})
	fmt.Println(string(out))
}

func load(path string) []*Input {
	f, err := os.Open(path)
	if err != nil {
		fail(2, "%v", err)
	}
	defer f.Close()
	var inputs []*Input
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		in := new(Input)
		if err := json.Unmarshal(sc.Bytes(), in); err != nil {
			fail(2, "%s line %d: %v", path, len(inputs)+1, err)
		}
		inputs = append(inputs, in)
	}
	if err := sc.Err(); err != nil {
		fail(2, "%s: %v", path, err)
	}
	return inputs
}

// show is up to 16 bytes of b in hex from near `at`, and its length.
func show(b []byte, at int) string {
	if b == nil {
		return "null"
	}
	if len(b) == 0 {
		return "empty"
	}
	from := min(max(0, at-4), len(b)-1)
	to := min(len(b), from+16)
	s := hex.EncodeToString(b[from:to])
	if from > 0 {
		s = "…" + s
	}
	if to < len(b) {
		s += "…"
	}
	return fmt.Sprintf("hex %s (%d bytes)", s, len(b))
}

// differ says how got differs from want, "" if it does not; null is not empty.
func differ(want, got []byte) string {
	if (want == nil) == (got == nil) && bytes.Equal(want, got) {
		return ""
	}
	if len(want) == 0 || len(got) == 0 {
		return fmt.Sprintf("expected %s, got %s", show(want, 0), show(got, 0))
	}
	at := 0
	for at < min(len(want), len(got)) && want[at] == got[at] {
		at++
	}
	return fmt.Sprintf("expected %s, got %s, first difference at byte %d", show(want, at), show(got, at), at)
}

// same compares got with in: key, value, timestamp, and its first headers
// (all of them for an output, the original ones for a dead letter).
func same(in *Input, got *kgo.Record, where string) []string {
	var d []string
	add := func(format string, args ...any) {
		d = append(d, fmt.Sprintf("%s in %s partition %d offset %d: ", in.name(), where, got.Partition, got.Offset)+fmt.Sprintf(format, args...))
	}
	if s := differ(in.Key, got.Key); s != "" {
		add("key: %s", s)
	}
	if s := differ(in.Value, got.Value); s != "" {
		add("value: %s", s)
	}
	if in.Timestamp != 0 && got.Timestamp.UnixMilli() != in.Timestamp {
		add("timestamp: expected %d, got %d", in.Timestamp, got.Timestamp.UnixMilli())
	}
	if where == "output" && len(got.Headers) != len(in.Headers) {
		add("expected %d headers, got %d", len(in.Headers), len(got.Headers))
	}
	if len(got.Headers) < len(in.Headers) {
		add("expected %d original headers, got %d headers in all", len(in.Headers), len(got.Headers))
	}
	shown := 0
	for i := 0; i < min(len(in.Headers), len(got.Headers)) && shown < 3; i++ {
		h := got.Headers[i]
		if s := differ(in.Headers[i].Key, []byte(h.Key)); s != "" {
			add("header %d key: %s", i, s)
			shown++
		}
		if s := differ(in.Headers[i].Value, h.Value); s != "" {
			add("header %d (%q) value: %s", i, h.Key, s)
			shown++
		}
	}
	return d
}

// appended are the headers weir added to a dead letter: the last of each
// weir.* name, since an original header may carry the same name.
func appended(r *kgo.Record) map[string]string {
	m := map[string]string{}
	for _, h := range r.Headers {
		if slices.Contains(weirHeaders, h.Key) {
			m[h.Key] = string(h.Value)
		}
	}
	return m
}

func check(seeds kgo.Opt, input, output, dead, path string, once bool, idle time.Duration) int {
	inputs := load(path)
	bySource := map[[2]int64]*Input{}
	byValue := map[string]*Input{}
	expected := map[string]int{}
	for _, in := range inputs {
		bySource[[2]int64{int64(in.Partition), in.Offset}] = in
		if accepted(in.Value) { // orders: unique by their id
			byValue[string(in.Value)] = in
		}
		expected[in.Expect]++
	}
	copies := map[*Input]int{}
	kinds := map[string]int{}
	var problems []string
	rewritten, outputs, deadLetters := 0, 0, 0

	cl := client(seeds, kgo.ConsumeTopics(output, dead), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		fetches := cl.PollFetches(ctx)
		cancel()
		for _, e := range fetches.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				fail(2, "reading %s partition %d: %v", e.Topic, e.Partition, e.Err)
			}
		}
		if fetches.NumRecords() == 0 {
			break
		}
		fetches.EachRecord(func(r *kgo.Record) {
			place := fmt.Sprintf("%s partition %d offset %d", r.Topic, r.Partition, r.Offset)
			var in *Input
			var where string
			if r.Topic == output {
				outputs++
				where = "output"
				if in = byValue[string(r.Value)]; in == nil {
					problems = append(problems, fmt.Sprintf("%s (output): its value is no input order's: %s", place, show(r.Value, 0)))
					return
				}
				if in.Expect != "output" {
					problems = append(problems, fmt.Sprintf("%s at %s: expected in the dead-letter topic as %s", in.name(), place, in.Expect))
				}
			} else {
				deadLetters++
				where = "dead-letter"
				w := appended(r)
				kinds[w["weir.error.kind"]]++
				for _, name := range weirHeaders {
					if _, ok := w[name]; !ok {
						problems = append(problems, fmt.Sprintf("%s (dead letter): no %s header", place, name))
					}
				}
				p, perr := strconv.ParseInt(w["weir.source.partition"], 10, 32)
				o, oerr := strconv.ParseInt(w["weir.source.offset"], 10, 64)
				in = bySource[[2]int64{p, o}]
				if w["weir.source.topic"] != input || perr != nil || oerr != nil || in == nil {
					problems = append(problems, fmt.Sprintf("%s (dead letter): its source %q partition %q offset %q is no input",
						place, w["weir.source.topic"], w["weir.source.partition"], w["weir.source.offset"]))
					return
				}
				if in.Expect != w["weir.error.kind"] {
					problems = append(problems, fmt.Sprintf("%s at %s: expected %s, dead-lettered as %q (reason %q)",
						in.name(), place, in.Expect, w["weir.error.kind"], w["weir.error.reason"]))
				}
				if extra := len(r.Headers) - len(in.Headers); extra < len(weirHeaders) {
					problems = append(problems, fmt.Sprintf("%s at %s: %d headers, expected its %d plus weir's %d",
						in.name(), place, len(r.Headers), len(in.Headers), len(weirHeaders)))
				}
			}
			copies[in]++
			if in.Timestamp == 0 && r.Timestamp.UnixMilli() != 0 {
				rewritten++
			}
			problems = append(problems, same(in, r, where)...)
		})
	}

	var missing []string
	missingBy := map[string]int{}
	duplicates := 0
	for _, in := range inputs {
		switch n := copies[in]; {
		case n == 0:
			missingBy[in.Expect]++
			missing = append(missing, fmt.Sprintf("%s: missing, expected in %s", in.name(), in.Expect))
		case n > 1:
			duplicates += n - 1
			if once {
				problems = append(problems, fmt.Sprintf("%s: %d copies, expected one (exactly-once)", in.name(), n))
			}
		}
	}
	problems = append(missing, problems...)

	fmt.Printf("inputs: %d (%s)\n", len(inputs), counts(expected))
	fmt.Printf("output: %d records; dead-letter: %d records, by weir.error.kind: %s\n", outputs, deadLetters, counts(kinds))
	fmt.Printf("missing: %d (%s); duplicates: %d; timestamps 0 rewritten by the producer: %d\n",
		len(missing), counts(missingBy), duplicates, rewritten)
	if len(problems) == 0 {
		fmt.Println("every input is where it belongs, byte for byte")
		return 0
	}
	for i, p := range problems {
		if i == 40 {
			fmt.Printf("... and %d more\n", len(problems)-i)
			break
		}
		fmt.Println(p)
	}
	fmt.Printf("%d problems\n", len(problems))
	return 1
}

func counts(m map[string]int) string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
