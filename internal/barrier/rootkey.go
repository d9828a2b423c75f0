package barrier

// RootKey returns a copy of the root key that opened the barrier, or
// ErrSealed. The caller owns the copy and zeroes it (secret.Zero) once
// done. It exists for the one caller that must reopen the barrier with the
// same key after replacing the storage under it: a restore of a snapshot,
// which seals the barrier while the storage is swapped and unseals it
// again without asking the operators for their key shares.
func (b *Barrier) RootKey() ([]byte, error) {
	b.rotateMu.Lock()
	defer b.rotateMu.Unlock()
	if b.rootKey == nil {
		return nil, ErrSealed
	}
	return append([]byte(nil), b.rootKey...), nil
}
