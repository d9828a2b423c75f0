package bolt

import "os"

// logSyncer makes the log durable after each append. Only the writer
// goroutine calls datasync; poll may be called by any goroutine, often.
type logSyncer interface {
	datasync(f *os.File) error
	// poll gives an asynchronous syncer a chance to notice a completion
	// sooner than its own notification would.
	poll()
	close()
}

// blockingSyncer is datasync in the calling goroutine.
type blockingSyncer struct{}

func (blockingSyncer) datasync(f *os.File) error { return datasync(f) }
func (blockingSyncer) poll()                     {}
func (blockingSyncer) close()                    {}
