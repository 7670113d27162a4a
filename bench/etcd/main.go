// etcdbench - the etcd half of bench/kv-vs-etcd.sh: the same closed-loop
// workload as bench/kvbench.c, driven natively over gRPC with clientv3.
//
// N goroutines ("clients") each issue one request at a time for a fixed
// duration: unconditional Puts of a V-byte value, linearizable Gets (the
// clientv3 default, NOT WithSerializable), or a 90/10 Get/Put mix, on keys
// drawn uniformly from a key space of K keys.  Latencies go into the same
// log-linear histogram as kvbench.c (128 sub-buckets per power of two of
// nanoseconds, < 0.8% error), and one machine-readable line is printed per
// run, identical in shape to kvbench's:
//
//	RESULT system=etcd workload=put clients=16 secs=5.000 ops=12345
//	       errors=0 ops_s=2469.0 p50_ms=0.512 p99_ms=1.234
//
// (one line).  Ops that complete during the warm-up are not counted; a
// measured op is one that completes inside the measurement window.
//
// By default the clients share one clientv3.Client (one gRPC connection,
// requests multiplexed over it), as etcd's own benchmark tool does with its
// default --conns=1: on a 2-CPU machine a connection per client costs etcd
// up to half its throughput.  -conns N uses N connections (0: one per
// client).  Every connection is given all the endpoints (clientv3's
// balancer spreads requests over them; followers forward Puts to the
// leader and serve linearizable Gets through ReadIndex), or with
// -leader-only just the current leader's, which is what raftkv's clerk
// does and what etcd's performance guide does for writes.
//
// Building offline from Debian's packages (golang-go, golang-etcd-server-dev
// 3.4: the import path is go.etcd.io/etcd/clientv3):
//
//	GO111MODULE=off GOPROXY=off GOPATH=/usr/share/gocode \
//	    go build -o etcdbench bench/etcd/main.go
//
// bench/kv-vs-etcd.sh does exactly that into a temporary directory.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.uber.org/zap"
)

// Histogram: values in nanoseconds.  Below 2^subBits a bucket per value;
// above, 2^subBits buckets per power of two.
const (
	subBits  = 7
	subCount = 1 << subBits
	maxExp   = 45 // ~9.7 hours
	nBuckets = subCount + (maxExp-subBits+1)*subCount
)

type hist struct {
	b     [nBuckets]uint64
	count uint64
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	e := 63 - bits.LeadingZeros64(v)
	if e > maxExp {
		return nBuckets - 1
	}
	sub := (v >> uint(e-subBits)) & (subCount - 1)
	return subCount + (e-subBits)*subCount + int(sub)
}

// Middle of bucket i, in nanoseconds.
func bucketValue(i int) float64 {
	if i < subCount {
		return float64(i)
	}
	e := (i-subCount)/subCount + subBits
	sub := uint64((i - subCount) % subCount)
	w := uint64(1) << uint(e-subBits)
	lo := (subCount + sub) * w
	return float64(lo) + float64(w)/2
}

func (h *hist) add(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.b[bucketOf(uint64(ns))]++
	h.count++
}

func (h *hist) merge(o *hist) {
	for i := range h.b {
		h.b[i] += o.b[i]
	}
	h.count += o.count
}

// Value at quantile q (0 < q <= 1), in nanoseconds; 0 when empty.
func (h *hist) quantile(q float64) float64 {
	if h.count == 0 {
		return 0
	}
	rank := uint64(q*float64(h.count) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i := range h.b {
		cum += h.b[i]
		if cum >= rank {
			return bucketValue(i)
		}
	}
	return bucketValue(nBuckets - 1)
}

// xorshift64*: per-client key and op choice, no shared state.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	*r = rng(x)
	return x * 2685821657736338717
}

type result struct {
	h      hist
	errors uint64
	first  error
}

func keyName(i int) string { return fmt.Sprintf("bench/k%06d", i) }

func main() {
	endpoints := flag.String("endpoints", "127.0.0.1:2379", "comma-separated etcd client endpoints")
	workload := flag.String("workload", "put", "put, get, mix (90% get / 10% put) or load (put every key once)")
	clients := flag.Int("clients", 1, "concurrent closed-loop clients")
	conns := flag.Int("conns", 1, "gRPC connections shared by the clients (0: one per client)")
	duration := flag.Duration("duration", 5*time.Second, "measured time")
	warmup := flag.Duration("warmup", time.Second, "unmeasured warm-up before the measured time")
	keys := flag.Int("keys", 1000, "key space size")
	valueSize := flag.Int("value-size", 256, "value size in bytes")
	timeout := flag.Duration("timeout", 10*time.Second, "per-request timeout")
	leaderOnly := flag.Bool("leader-only", false, "send every request to the current leader's endpoint only")
	flag.Parse()

	switch *workload {
	case "put", "get", "mix", "load":
	default:
		fmt.Fprintf(os.Stderr, "etcdbench: unknown workload %q\n", *workload)
		os.Exit(2)
	}
	if *clients < 1 || *keys < 1 || *valueSize < 0 || *conns < 0 {
		fmt.Fprintln(os.Stderr, "etcdbench: -clients and -keys must be >= 1, -conns >= 0")
		os.Exit(2)
	}
	nconn := *conns
	if nconn == 0 || nconn > *clients {
		nconn = *clients
	}
	eps := strings.Split(*endpoints, ",")
	quiet := zap.NewProductionConfig()
	quiet.Level = zap.NewAtomicLevelAt(zap.ErrorLevel)
	if *leaderOnly {
		eps = []string{findLeader(eps, &quiet)}
	}
	cls := make([]*clientv3.Client, nconn)
	for i := range cls {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   eps,
			DialTimeout: 5 * time.Second,
			LogConfig:   &quiet,
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcdbench: connect %s: %v\n", *endpoints, err)
			os.Exit(1)
		}
		defer c.Close()
		cls[i] = c
	}

	value := strings.Repeat("v", *valueSize)
	names := make([]string, *keys)
	for i := range names {
		names[i] = keyName(i)
	}

	// "load": every key once, split over the clients; the whole run is
	// measured (no warm-up, no time limit).
	if *workload == "load" {
		runLoad(cls, names, value, *clients, *timeout)
		return
	}

	start := time.Now()
	t0 := start.Add(*warmup)
	t1 := t0.Add(*duration)
	res := make([]*result, *clients)
	var wg sync.WaitGroup
	for i := 0; i < *clients; i++ {
		res[i] = &result{}
		wg.Add(1)
		go func(id int, r *result) {
			defer wg.Done()
			kv := cls[id%nconn].KV
			rnd := rng(0x9E3779B97F4A7C15 ^ uint64(id+1)*0xBF58476D1CE4E5B9)
			for {
				k := names[rnd.next()%uint64(len(names))]
				put := *workload == "put" ||
					(*workload == "mix" && rnd.next()%10 == 0)
				ctx, cancel := context.WithTimeout(context.Background(), *timeout)
				s := time.Now()
				var err error
				if put {
					_, err = kv.Put(ctx, k, value)
				} else {
					_, err = kv.Get(ctx, k)
				}
				e := time.Now()
				cancel()
				if !e.Before(t1) {
					return
				}
				if e.Before(t0) {
					continue
				}
				if err != nil {
					r.errors++
					if r.first == nil {
						r.first = err
					}
					continue
				}
				r.h.add(e.Sub(s).Nanoseconds())
			}
		}(i, res[i])
	}
	wg.Wait()
	report(*workload, *clients, duration.Seconds(), res)
}

// The endpoint of the member that currently leads (exits on failure).
func findLeader(eps []string, logc *zap.Config) string {
	for _, ep := range eps {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep},
			DialTimeout: 5 * time.Second, LogConfig: logc})
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := c.Status(ctx, ep)
		cancel()
		c.Close()
		if err == nil && st.Leader == st.Header.MemberId {
			return ep
		}
	}
	fmt.Fprintln(os.Stderr, "etcdbench: no endpoint is the leader")
	os.Exit(1)
	return ""
}

func runLoad(cls []*clientv3.Client, names []string, value string, clients int, timeout time.Duration) {
	res := make([]*result, clients)
	var wg sync.WaitGroup
	s0 := time.Now()
	for i := 0; i < clients; i++ {
		res[i] = &result{}
		wg.Add(1)
		go func(id int, r *result) {
			defer wg.Done()
			kv := cls[id%len(cls)].KV
			for k := id; k < len(names); k += clients {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				s := time.Now()
				_, err := kv.Put(ctx, names[k], value)
				cancel()
				if err != nil {
					r.errors++
					if r.first == nil {
						r.first = err
					}
					continue
				}
				r.h.add(time.Since(s).Nanoseconds())
			}
		}(i, res[i])
	}
	wg.Wait()
	report("load", clients, time.Since(s0).Seconds(), res)
}

func report(workload string, clients int, secs float64, res []*result) {
	var h hist
	var errors uint64
	var first error
	for _, r := range res {
		h.merge(&r.h)
		errors += r.errors
		if first == nil {
			first = r.first
		}
	}
	if first != nil {
		fmt.Fprintf(os.Stderr, "etcdbench: %d errors, first: %v\n", errors, first)
	}
	fmt.Printf("RESULT system=etcd workload=%s clients=%d secs=%.3f ops=%d errors=%d ops_s=%.1f p50_ms=%.3f p99_ms=%.3f\n",
		workload, clients, secs, h.count, errors, float64(h.count)/secs,
		h.quantile(0.50)/1e6, h.quantile(0.99)/1e6)
	if errors > 0 {
		os.Exit(1)
	}
}
