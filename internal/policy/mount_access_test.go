package policy

import "testing"

func TestCanReachMount(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy string
		mount  string
		want   bool
	}{
		{"deep prefix rule", `path "secret/data/app/*" { capabilities = ["read"] }`, "secret/", true},
		{"deep exact rule", `path "secret/data/app/key" { capabilities = ["read"] }`, "secret/", true},
		{"rule on the mount itself", `path "secret/" { capabilities = ["list"] }`, "secret/", true},
		{"prefix covering the mount", `path "sec*" { capabilities = ["read"] }`, "secret/", true},
		{"everything", `path "*" { capabilities = ["read"] }`, "secret/", true},
		{"other mount", `path "kv/data/*" { capabilities = ["read"] }`, "secret/", false},
		{"sibling with shared letters", `path "secrets/*" { capabilities = ["read"] }`, "secret/", false},
		{"deny only", `path "secret/*" { capabilities = ["deny"] }`, "secret/", false},
		{"segment rule under the mount", `path "secret/data/+/key" { capabilities = ["read"] }`, "secret/", true},
		{"segment rule for any mount", `path "+/data/*" { capabilities = ["read"] }`, "secret/", true},
		{"segment rule for another mount", `path "kv/+/x" { capabilities = ["read"] }`, "secret/", false},
		{"nested mount path", `path "team/a/secret/data/*" { capabilities = ["read"] }`, "team/a/", true},
		{"segment rule in a nested mount", `path "team/+/data/*" { capabilities = ["read"] }`, "team/a/", true},
		{"segment rule too short", `path "+" { capabilities = ["read"] }`, "team/a/", false},
		{"no rules", `path "other" { capabilities = ["read"] }`, "secret/", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("p", tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Compile(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.CanReachMount(tc.mount); got != tc.want {
				t.Fatalf("CanReachMount(%q) = %v, want %v", tc.mount, got, tc.want)
			}
		})
	}
	if !Root().CanReachMount("anything/") {
		t.Fatal("root reaches every mount")
	}
	var nilACL *ACL
	if nilACL.CanReachMount("secret/") {
		t.Fatal("a nil ACL reaches nothing")
	}
}
