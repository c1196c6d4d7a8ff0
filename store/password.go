package store

import (
	"errors"
	"strings"
)

// WeakPassword says which rule a new password breaks, or returns nil: it
// must have 8 to 1024 bytes, not repeat one character, not be a run of
// consecutive characters (12345678, abcdefgh, 98765432), and not be one of
// the most common passwords (any case). Existing passwords still log in.
func WeakPassword(pw string) error {
	if len(pw) < minPassword || len(pw) > maxPassword {
		return errors.New("password must have 8 to 1024 bytes")
	}
	if strings.Count(pw, pw[:1]) == len(pw) {
		return errors.New("password is one character repeated")
	}
	up, down := true, true
	for i := 1; i < len(pw); i++ {
		up = up && pw[i] == pw[i-1]+1
		down = down && pw[i] == pw[i-1]-1
	}
	if up || down {
		return errors.New("password is a run of consecutive characters (like 12345678 or abcdefgh)")
	}
	if commonPasswords[strings.ToLower(pw)] {
		return errors.New("password is one of the most common passwords")
	}
	return nil
}

// commonPasswords are the most common passwords of 8 or more characters in
// published leaks, lower case (the runs and repeats WeakPassword refuses
// anyway are left out).
var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range strings.Fields(`
		password password1 password12 password123 password1234 passw0rd p@ssw0rd p@ssword pa$$word
		123123123 12341234 11223344 12344321 123454321 1234512345 123456123456 123123123123 147258369
		159753159 789456123 1q2w3e4r 1q2w3e4r5t 1qaz2wsx 1qazxsw2 zaq12wsx qazwsxedc q1w2e3r4 q1w2e3r4t5
		qwertyui qwertyuiop qwerty12 qwerty123 qwerty1234 qwe12345 qweasdzxc asdfghjk asdfghjkl asdf1234
		zxcvbnm1 zxcvbnm123 1234qwer abcd1234 abc12345 abc123456 aa123456 a1234567 a12345678 1234abcd
		iloveyou iloveyou1 iloveyou2 sunshine sunshine1 princess princess1 football football1 baseball
		baseball1 basketball welcome1 welcome12 welcome123 admin123 admin1234 administrator letmein1
		letmein123 trustno1 superman starwars whatever computer internet dragon12 master12 monkey12
		shadow12 changeme changeme1 secret12 secret123 mustang1 michael1 jennifer michelle samantha
		charlie1 jordan23 liverpool chocolate hello123 test1234 testtest admin12345 root1234 guest123
		pass1234 passpass loveyou1 ashley12 football12 1password mypassword newpassword golem123
		golempassword default1 qwerty11 00000001 11111112 12345679 123456789a 987654321a
	`) {
		m[p] = true
	}
	return m
}()
