package bolt

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// An fdatasync of the log takes a fraction of a millisecond of waiting on
// the device and almost no processor time, but a goroutine in a system
// call keeps its processor (P) until the runtime's monitor notices, which
// takes tens to hundreds of microseconds: under load, the writer's fsyncs
// idle a processor that requests could use. An asyncSyncer hands each
// fsync to the kernel through an io_uring and parks the writer goroutine,
// like a network read, until the completion arrives; the processor goes
// on running requests meanwhile. Where io_uring is not available (an old
// kernel, a seccomp policy, io_uring_disabled), the log falls back to
// fdatasync.
//
// The completion is noticed two ways: an eventfd the ring signals, read by
// a goroutine through the runtime's network poller (enough for an idle
// store), and [asyncSyncer.poll], which every write and read of the store
// calls: under load the poller is consulted only when the scheduler runs
// out of goroutines, while storage calls come every few microseconds.

// io_uring constants and layouts (linux/io_uring.h).
const (
	sysIOURingSetup    = 425
	sysIOURingEnter    = 426
	sysIOURingRegister = 427

	ioringOffSQRing = 0
	ioringOffCQRing = 0x8000000
	ioringOffSQEs   = 0x10000000

	ioringOpFsync       = 3
	ioringFsyncDatasync = 1
	ioringRegisterEvfd  = 4

	sqeSize = 64
	cqeSize = 16
)

type uringSQOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type uringCQOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

type uringParams struct {
	sqEntries, cqEntries, flags, sqThreadCPU, sqThreadIdle, features, wqFd uint32
	resv                                                                   [3]uint32
	sqOff                                                                  uringSQOffsets
	cqOff                                                                  uringCQOffsets
}

type uringSQE struct {
	opcode     uint8
	flags      uint8
	ioprio     uint16
	fd         int32
	off        uint64
	addr       uint64
	len        uint32
	fsyncFlags uint32
	userData   uint64
	_          [3]uint64
}

type uringCQE struct {
	userData uint64
	res      int32
	flags    uint32
}

// asyncSyncer makes files durable through an io_uring. One goroutine at a
// time calls datasync (the log's writer); poll may be called by any.
type asyncSyncer struct {
	fd                   int
	sqRing, cqRing, sqes []byte
	p                    uringParams
	evfd                 *os.File

	// wake has a token when a completion may have arrived; waiting is
	// set while the writer is parked on it.
	wake    chan struct{}
	waiting atomic.Bool
	exited  chan struct{}
	// polling counts polls reading the ring; closing stops new ones.
	polling atomic.Int32
	closing atomic.Bool
	// backstop re-polls a parked writer in case no signal comes (the
	// eventfd failing).
	backstop *time.Timer
	// fallback is set once the ring could not sync a file: datasync then
	// calls fdatasync.
	fallback bool
}

// backstopWait bounds how long a parked writer goes without looking at
// the ring.
const backstopWait = 5 * time.Millisecond

// newAsyncSyncer sets up a ring of a few entries with an eventfd, or
// returns an error when the kernel refuses.
func newAsyncSyncer() (_ *asyncSyncer, err error) {
	s := &asyncSyncer{fd: -1, wake: make(chan struct{}, 1), exited: make(chan struct{})}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	fd, _, errno := syscall.Syscall(sysIOURingSetup, 4, uintptr(unsafe.Pointer(&s.p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	s.fd = int(fd)
	syscall.CloseOnExec(s.fd)
	mmap := func(off int64, size uint32) ([]byte, error) {
		return syscall.Mmap(s.fd, off, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_POPULATE)
	}
	if s.sqRing, err = mmap(ioringOffSQRing, s.p.sqOff.array+s.p.sqEntries*4); err != nil {
		return nil, fmt.Errorf("io_uring mmap: %w", err)
	}
	if s.cqRing, err = mmap(ioringOffCQRing, s.p.cqOff.cqes+s.p.cqEntries*cqeSize); err != nil {
		return nil, fmt.Errorf("io_uring mmap: %w", err)
	}
	if s.sqes, err = mmap(ioringOffSQEs, s.p.sqEntries*sqeSize); err != nil {
		return nil, fmt.Errorf("io_uring mmap: %w", err)
	}
	efd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return nil, fmt.Errorf("eventfd: %w", errno)
	}
	// A non-blocking descriptor: reads park in the network poller.
	s.evfd = os.NewFile(efd, "io_uring eventfd")
	e32 := int32(efd)
	if _, _, errno := syscall.Syscall6(sysIOURingRegister, uintptr(s.fd), ioringRegisterEvfd, uintptr(unsafe.Pointer(&e32)), 1, 0, 0); errno != 0 {
		return nil, fmt.Errorf("io_uring_register eventfd: %w", errno)
	}
	go s.watch()
	return s, nil
}

// watch wakes the writer whenever the ring signals its eventfd, until the
// eventfd is closed.
func (s *asyncSyncer) watch() {
	defer close(s.exited)
	var buf [8]byte
	for {
		if _, err := s.evfd.Read(buf[:]); err != nil {
			// Closed; anything else would repeat. The backstop and
			// poll still wake the writer.
			return
		}
		s.signal()
	}
}

func (s *asyncSyncer) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// poll wakes the writer if it is parked and its fsync has completed: one
// load when the writer is not waiting. It may run at any time, even while
// close unmaps the ring: polling makes close wait for a poll that reads
// the ring, and a poll that begins later sees closing.
func (s *asyncSyncer) poll() {
	if !s.waiting.Load() {
		return
	}
	s.polling.Add(1)
	if !s.closing.Load() && s.completed() {
		s.signal()
	}
	s.polling.Add(-1)
}

func (s *asyncSyncer) u32(ring []byte, off uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(&ring[off]))
}

func (s *asyncSyncer) completed() bool {
	return atomic.LoadUint32(s.u32(s.cqRing, s.p.cqOff.tail)) != atomic.LoadUint32(s.u32(s.cqRing, s.p.cqOff.head))
}

// reap takes the completion, if it has arrived.
func (s *asyncSyncer) reap() (res int32, ok bool) {
	head := atomic.LoadUint32(s.u32(s.cqRing, s.p.cqOff.head))
	if atomic.LoadUint32(s.u32(s.cqRing, s.p.cqOff.tail)) == head {
		return 0, false
	}
	mask := *s.u32(s.cqRing, s.p.cqOff.ringMask)
	c := (*uringCQE)(unsafe.Pointer(&s.cqRing[s.p.cqOff.cqes+(head&mask)*cqeSize]))
	res = c.res
	atomic.StoreUint32(s.u32(s.cqRing, s.p.cqOff.head), head+1)
	return res, true
}

// datasync submits an fdatasync of f and waits for its completion without
// holding a processor. A kernel that cannot run the operation through the
// ring (it answers EINVAL or EOPNOTSUPP, or refuses the submission) gets
// fdatasync from then on. An error the fsync itself reports, such as
// EIO, is returned and never retried another way: a second fsync could
// report success for data that was lost.
func (s *asyncSyncer) datasync(f *os.File) error {
	if s.fallback {
		return datasync(f)
	}
	tail := atomic.LoadUint32(s.u32(s.sqRing, s.p.sqOff.tail))
	mask := *s.u32(s.sqRing, s.p.sqOff.ringMask)
	idx := tail & mask
	sqe := (*uringSQE)(unsafe.Pointer(&s.sqes[idx*sqeSize]))
	*sqe = uringSQE{opcode: ioringOpFsync, fd: int32(f.Fd()), fsyncFlags: ioringFsyncDatasync}
	*s.u32(s.sqRing, s.p.sqOff.array+idx*4) = idx
	atomic.StoreUint32(s.u32(s.sqRing, s.p.sqOff.tail), tail+1)
	for {
		_, _, errno := syscall.Syscall6(sysIOURingEnter, uintptr(s.fd), 1, 0, 0, 0, 0)
		if errno == 0 {
			break
		}
		if errno != syscall.EINTR && errno != syscall.EAGAIN && errno != syscall.EBUSY {
			// Not submitted: take the entry back, and sync the
			// ordinary way.
			atomic.StoreUint32(s.u32(s.sqRing, s.p.sqOff.tail), tail)
			s.fallback = true
			return datasync(f)
		}
	}
	switch res := s.wait(); {
	case res == -int32(syscall.EINVAL) || res == -int32(syscall.EOPNOTSUPP):
		s.fallback = true
		return datasync(f)
	case res < 0:
		return syscall.Errno(-res)
	}
	return nil
}

// wait parks until the submitted fsync completes and returns its result.
func (s *asyncSyncer) wait() int32 {
	for {
		if res, ok := s.reap(); ok {
			return res
		}
		s.waiting.Store(true)
		// A poll that ran before waiting was set may have seen nothing:
		// look again before parking.
		if res, ok := s.reap(); ok {
			s.waiting.Store(false)
			return res
		}
		if s.backstop == nil {
			s.backstop = time.NewTimer(backstopWait)
		} else {
			s.backstop.Reset(backstopWait)
		}
		select {
		case <-s.wake:
		case <-s.backstop.C:
		}
		s.backstop.Stop()
		s.waiting.Store(false)
	}
}

// close releases the ring. No datasync may be in progress; polls may.
func (s *asyncSyncer) close() {
	s.closing.Store(true)
	for s.polling.Load() != 0 {
		runtime.Gosched()
	}
	s.release()
	if s.evfd != nil {
		<-s.exited
	}
}

func (s *asyncSyncer) release() {
	for _, m := range [][]byte{s.sqRing, s.cqRing, s.sqes} {
		if m != nil {
			_ = syscall.Munmap(m)
		}
	}
	s.sqRing, s.cqRing, s.sqes = nil, nil, nil
	if s.fd >= 0 {
		_ = syscall.Close(s.fd)
		s.fd = -1
	}
	if s.evfd != nil {
		_ = s.evfd.Close()
	}
}
