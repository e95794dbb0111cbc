package metrics

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// GoCollector reports the Go runtime's goroutines, threads, memory and GC pauses under
// the go_* names client_golang used.
type GoCollector struct{}

func gauge(name, help string, v float64) Family {
	return Family{Name: name, Help: help, Type: TypeGauge, Samples: []Sample{{Value: v}}}
}

func counter(name, help string, v float64) Family {
	return Family{Name: name, Help: help, Type: TypeCounter, Samples: []Sample{{Value: v}}}
}

// Collect implements Collector.
func (GoCollector) Collect() []Family {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	threads, _ := runtime.ThreadCreateProfile(nil)
	var gc debug.GCStats
	gc.PauseQuantiles = make([]time.Duration, 5)
	debug.ReadGCStats(&gc)
	pauses := Family{Name: "go_gc_duration_seconds", Help: "A summary of the wall-time pause (stop-the-world) duration in garbage collection cycles.", Type: TypeSummary}
	for i, q := range []string{"0", "0.25", "0.5", "0.75", "1"} {
		pauses.Samples = append(pauses.Samples, Sample{Labels: []Label{{"quantile", q}}, Value: gc.PauseQuantiles[i].Seconds()})
	}
	pauses.Samples = append(pauses.Samples, Sample{Suffix: "_sum", Value: gc.PauseTotal.Seconds()}, Sample{Suffix: "_count", Value: float64(gc.NumGC)})
	lastGC := 0.0
	if ms.LastGC > 0 {
		lastGC = float64(ms.LastGC) / 1e9
	}
	b := func(u uint64) float64 { return float64(u) }
	return []Family{
		pauses,
		gauge("go_gc_gogc_percent", "Heap size target percentage configured by the user, otherwise 100.", gogc()),
		gauge("go_gc_gomemlimit_bytes", "Go runtime memory limit configured by the user, otherwise math.MaxInt64.", float64(debug.SetMemoryLimit(-1))),
		gauge("go_goroutines", "Number of goroutines that currently exist.", float64(runtime.NumGoroutine())),
		{Name: "go_info", Help: "Information about the Go environment.", Type: TypeGauge, Samples: []Sample{{Labels: []Label{{"version", runtime.Version()}}, Value: 1}}},
		gauge("go_memstats_alloc_bytes", "Number of bytes allocated in heap and currently in use.", b(ms.Alloc)),
		counter("go_memstats_alloc_bytes_total", "Total number of bytes allocated in heap until now, even if released already.", b(ms.TotalAlloc)),
		gauge("go_memstats_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table.", b(ms.BuckHashSys)),
		counter("go_memstats_frees_total", "Total number of heap objects frees.", b(ms.Frees)),
		gauge("go_memstats_gc_sys_bytes", "Number of bytes used for garbage collection system metadata.", b(ms.GCSys)),
		gauge("go_memstats_heap_alloc_bytes", "Number of heap bytes allocated and currently in use, same as go_memstats_alloc_bytes.", b(ms.HeapAlloc)),
		gauge("go_memstats_heap_idle_bytes", "Number of heap bytes waiting to be used.", b(ms.HeapIdle)),
		gauge("go_memstats_heap_inuse_bytes", "Number of heap bytes that are in use.", b(ms.HeapInuse)),
		gauge("go_memstats_heap_objects", "Number of currently allocated objects.", b(ms.HeapObjects)),
		gauge("go_memstats_heap_released_bytes", "Number of heap bytes released to OS.", b(ms.HeapReleased)),
		gauge("go_memstats_heap_sys_bytes", "Number of heap bytes obtained from system.", b(ms.HeapSys)),
		gauge("go_memstats_last_gc_time_seconds", "Number of seconds since 1970 of last garbage collection.", lastGC),
		counter("go_memstats_mallocs_total", "Total number of heap objects allocated, both live and gc-ed.", b(ms.Mallocs)),
		gauge("go_memstats_mcache_inuse_bytes", "Number of bytes in use by mcache structures.", b(ms.MCacheInuse)),
		gauge("go_memstats_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system.", b(ms.MCacheSys)),
		gauge("go_memstats_mspan_inuse_bytes", "Number of bytes in use by mspan structures.", b(ms.MSpanInuse)),
		gauge("go_memstats_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system.", b(ms.MSpanSys)),
		gauge("go_memstats_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", b(ms.NextGC)),
		gauge("go_memstats_other_sys_bytes", "Number of bytes used for other system allocations.", b(ms.OtherSys)),
		gauge("go_memstats_stack_inuse_bytes", "Number of bytes obtained from system for stack allocator in non-CGO environments.", b(ms.StackInuse)),
		gauge("go_memstats_stack_sys_bytes", "Number of bytes obtained from system for stack allocator.", b(ms.StackSys)),
		gauge("go_memstats_sys_bytes", "Number of bytes obtained from system.", b(ms.Sys)),
		gauge("go_sched_gomaxprocs_threads", "The current runtime.GOMAXPROCS setting.", float64(runtime.GOMAXPROCS(0))),
		gauge("go_threads", "Number of OS threads created.", float64(threads)),
	}
}

// gogc is the GC target percentage from GOGC (the daemon never changes it at run time;
// reading it through debug.SetGCPercent would have to change it).
func gogc() float64 {
	switch v := os.Getenv("GOGC"); v {
	case "":
		return 100
	case "off":
		return -1
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			return 100
		}
		return float64(n)
	}
}

// ProcessCollector reports the process's CPU time, memory, file descriptors and start time
// from /proc/self under the process_* names client_golang used. Fields it cannot read are
// left out.
type ProcessCollector struct{}

// userHZ is the unit of the CPU times in /proc/self/stat (USER_HZ, 100 on Linux).
const userHZ = 100

// Collect implements Collector.
func (ProcessCollector) Collect() []Family {
	var out []Family
	if st, err := os.ReadFile("/proc/self/stat"); err == nil {
		// The fields after the command name, which is in parentheses and may hold spaces.
		if i := bytes.LastIndexByte(st, ')'); i >= 0 {
			f := strings.Fields(string(st[i+1:]))
			num := func(n int) float64 { // n: the field number of proc(5), 1-based
				if n-3 >= len(f) {
					return 0
				}
				v, _ := strconv.ParseFloat(f[n-3], 64)
				return v
			}
			out = append(out,
				counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", (num(14)+num(15))/userHZ),
				gauge("process_resident_memory_bytes", "Resident memory size in bytes.", num(24)*float64(os.Getpagesize())),
				gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", num(23)))
			if boot, ok := bootTime(); ok {
				out = append(out, gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", boot+num(22)/userHZ))
			}
		}
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		out = append(out, gauge("process_open_fds", "Number of open file descriptors.", float64(len(fds))))
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		out = append(out, gauge("process_max_fds", "Maximum number of open file descriptors.", float64(rl.Cur)))
	}
	if syscall.Getrlimit(syscall.RLIMIT_AS, &rl) == nil {
		out = append(out, gauge("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", float64(rl.Cur)))
	}
	if in, outB, ok := netBytes(); ok {
		out = append(out,
			counter("process_network_receive_bytes_total", "Number of bytes received by the process over the network.", in),
			counter("process_network_transmit_bytes_total", "Number of bytes sent by the process over the network.", outB))
	}
	return out
}

// bootTime is the btime line of /proc/stat: the clock the start time in stat counts from.
func bootTime() (float64, bool) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "btime "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// netBytes reads InOctets and OutOctets of the IpExt lines of /proc/self/net/netstat (a
// header line of names, then one of values).
func netBytes() (in, out float64, ok bool) {
	data, err := os.ReadFile("/proc/self/net/netstat")
	if err != nil {
		return 0, 0, false
	}
	var names []string
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "IpExt:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i := 1; i < len(f) && i < len(names); i++ {
			v, _ := strconv.ParseFloat(f[i], 64)
			switch names[i] {
			case "InOctets":
				in, ok = v, true
			case "OutOctets":
				out = v
			}
		}
		return in, out, ok
	}
	return 0, 0, false
}

var (
	_ Collector = GoCollector{}
	_ Collector = ProcessCollector{}
)
