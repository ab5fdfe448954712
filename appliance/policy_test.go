package appliance

import "testing"

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
