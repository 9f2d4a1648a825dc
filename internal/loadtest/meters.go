package loadtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// CPUMeter reads the CPU time a server process has used so far.
type CPUMeter struct {
	Name string // "authd", "redis", "pg": the prefix of its metric
	Read func() (time.Duration, error)
}

// userHZ is the unit of the times in /proc/<pid>/stat: Linux reports
// them in USER_HZ, 100 per second, whatever the kernel's own tick.
const userHZ = 100

// ProcessCPU meters process pid: the user and system time of all its
// threads, from /proc/<pid>/stat (10 ms resolution: runs of a few
// seconds make it negligible per operation).
func ProcessCPU(name string, pid int) CPUMeter {
	return CPUMeter{Name: name, Read: func() (time.Duration, error) {
		st, err := readStat(pid)
		if err != nil {
			return 0, err
		}
		return st.own(), nil
	}}
}

// ProcessTreeCPU meters process pid with its children, as PostgreSQL's
// postmaster and its backends: its own time, the time of the children it
// has waited for (cutime, cstime), and that of its children still alive.
// A child that exits between two readings moves from the last sum to the
// second, so nothing is counted twice or lost.
func ProcessTreeCPU(name string, pid int) CPUMeter {
	return CPUMeter{Name: name, Read: func() (time.Duration, error) {
		st, err := readStat(pid)
		if err != nil {
			return 0, err
		}
		total := st.own() + st.children()
		dirs, err := filepath.Glob("/proc/[0-9]*")
		if err != nil {
			return 0, err
		}
		for _, d := range dirs {
			cpid, err := strconv.Atoi(filepath.Base(d))
			if err != nil || cpid == pid {
				continue
			}
			cst, err := readStat(cpid)
			if err != nil || cst.ppid != pid {
				continue // gone since the listing, or not a child
			}
			total += cst.own() + cst.children()
		}
		return total, nil
	}}
}

// procStat is what loadtest reads of /proc/<pid>/stat, in clock ticks.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

func (s procStat) own() time.Duration      { return ticks(s.utime + s.stime) }
func (s procStat) children() time.Duration { return ticks(s.cutime + s.cstime) }

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses /proc/<pid>/stat (proc(5)): the command name is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("stat: no command name in %q", b)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("stat: %d fields after the command name", len(f))
	}
	var st procStat
	var n [5]int64
	for j, k := range []int{1, 11, 12, 13, 14} {
		v, err := strconv.ParseInt(string(f[k]), 10, 64)
		if err != nil {
			return procStat{}, fmt.Errorf("stat field %d: %w", k+3, err)
		}
		n[j] = v
	}
	st.ppid = int(n[0])
	st.utime, st.stime, st.cutime, st.cstime = n[1], n[2], n[3], n[4]
	return st, nil
}

// selfCPU is the user and system time this process has used: the load
// generator's, since the servers under load run as processes of their own.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
