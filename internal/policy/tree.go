package policy

// node is a node of a radix tree keyed by the literal part of non-exact
// rules: a prefix rule "secret/data/*" sits at "secret/data/", a segment
// rule "transit/+/x" at its head "transit/" (everything before its first
// "+" segment). Walking the tree along a request path visits exactly the
// nodes whose key is a prefix of the path, in order of length, so one walk
// finds the longest prefix rule and every segment rule worth trying,
// without looking at the others.
type node struct {
	label string  // the key bytes on the edge from the parent
	first []byte  // first[i] == children[i].label[0]
	kids  []*node // children, one per distinct first byte
	// prefix is the prefix rule whose key ends here, if any.
	prefix *rule
	// wild are the segment-wildcard rules whose head ends here.
	wild []*rule
}

// child returns the child whose label starts with b.
func (n *node) child(b byte) *node {
	for i, f := range n.first {
		if f == b {
			return n.kids[i]
		}
	}
	return nil
}

// at returns the node for key, creating it (and splitting an edge) as
// needed.
func (n *node) at(key string) *node {
	cur := n
	for key != "" {
		i := -1
		for j, f := range cur.first {
			if f == key[0] {
				i = j
				break
			}
		}
		if i < 0 {
			nn := &node{label: key}
			cur.first = append(cur.first, key[0])
			cur.kids = append(cur.kids, nn)
			return nn
		}
		c := cur.kids[i]
		k := commonPrefix(c.label, key)
		if k == len(c.label) {
			cur, key = c, key[k:]
			continue
		}
		// Split the edge: mid takes the shared bytes, c keeps the rest.
		mid := &node{label: c.label[:k], first: []byte{c.label[k]}, kids: []*node{c}}
		c.label = c.label[k:]
		cur.kids[i] = mid
		if k == len(key) {
			return mid
		}
		nn := &node{label: key[k:]}
		mid.first = append(mid.first, key[k])
		mid.kids = append(mid.kids, nn)
		return nn
	}
	return cur
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
