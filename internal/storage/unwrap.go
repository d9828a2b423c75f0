package storage

// Wrapper is implemented by backends that pass every call on to another
// one (the metrics timing, for example) and expose only some of its
// optional interfaces: Unwrap returns the backend they wrap, so that a
// caller that needs another optional interface can still find it.
//
// A wrapper that changes what the calls do (one that fences or filters
// writes) must not implement Wrapper: the backend behind it is not
// equivalent to it.
type Wrapper interface {
	Unwrap() Backend
}

// SnapshotterOf returns b as a [Snapshotter], or the first backend
// behind b's wrappers that is one. ok is false when none is.
func SnapshotterOf(b Backend) (s Snapshotter, ok bool) {
	for b != nil {
		if s, ok := b.(Snapshotter); ok {
			return s, true
		}
		w, ok := b.(Wrapper)
		if !ok {
			return nil, false
		}
		b = w.Unwrap()
	}
	return nil, false
}
