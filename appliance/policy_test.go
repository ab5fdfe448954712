package appliance

import (
	"strings"
	"testing"
)

func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(`{"airlock_policy":1,"roles":{"sigstore":{"holders":["alice","bob"],"min_holders":2,"max_expiry_days":90,"key_kinds":["yubikey"],"attestation":{"require_hardware":true,"require_pin_always":false,"require_touch_always":false}}}}`))
	f.Add([]byte(`{"airlock_policy":1,"roles":{"root":{"kinds":["root"],"groups":[{"name":"a","holders":["x"],"min":1}]}}}`))
	f.Add([]byte(`{"airlock_policy":1,"roles":{"r":{"min_holders":1}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePolicy(b)
		if err != nil {
			return
		}
		for _, r := range p.Roles {
			if r.minHolders() < 2 {
				t.Fatal("a policy that lets one person sign alone was accepted")
			}
		}
	})
}

// Every policy mistake names the field, in the file's own json names.
func TestPolicyErrorsNameTheField(t *testing.T) {
	for _, c := range []struct{ policy, want string }{
		{`{"airlock_policy":2,"roles":{}}`, `format 2 is not supported (want "airlock_policy": 1)`},
		{`{"airlock_policy":1,"roles":{}}`, `no roles: add at least one role under "roles"`},
		{`{"airlock_policy":1,"roles":{"s":{"min_holder":2}}}`, `policy: unknown field "min_holder"`},
		{`{"airlock_policy":1,"roles":{"s":{"min_holders":"2"}}}`, `field roles.min_holders: want a int, got a json string`},
		{`{"airlock_policy":1,"roles":{"s":{"min_holders":1}}}`, `roles["s"].min_holders: 1, want 2 or more`},
		{`{"airlock_policy":1,"roles":{"s":{"kinds":["releas"]}}}`, `roles["s"].kinds: "releas" is not one of`},
		{`{"airlock_policy":1,"roles":{"s":{"holders":["a"]}}}`, `roles["s"].holders: 1 listed but min_holders is 2`},
		{`{"airlock_policy":1,"roles":{"s":{"groups":[{"name":"g","holders":["a"],"min":2}]}}}`, `roles["s"].groups[0].min: group "g" needs 2 of its 1 holders`},
		{`{"airlock_policy":1,"roles":{"s":{"max_expiry_days":5000}}}`, `roles["s"].max_expiry_days: 5000, want 1 to 3650`},
		{`{"airlock_policy":1,"roles":{"s":{"key_kinds":["usb"]}}}`, `roles["s"].key_kinds: "usb", want yubikey, tpm or file`},
		{`{"airlock_policy":1,"roles":{"s":{"provenance":{"package":"p","require":true,"publishers":[]}}}}`, `roles["s"].provenance: `},
		{`{"airlock_policy":1,"roles":{"s":{}}} {}`, `trailing data`},
	} {
		_, err := ParsePolicy([]byte(c.policy))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant …%s…", c.policy, err, c.want)
		}
	}
}
