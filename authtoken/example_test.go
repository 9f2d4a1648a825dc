package authtoken_test

import (
	"fmt"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
)

// A wallet signs a DELETE of its backup in the bound form, which is good
// for that method at that server only, and the server checks it.
func Example() {
	// A test key; never use it for anything else.
	const wif = "L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7"
	signer, err := authtoken.NewSigner(wif)
	if err != nil {
		panic(err)
	}
	now := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	token, err := signer.Token(authtoken.TokenOptions{
		Method:    "DELETE",
		URL:       "https://auth.example.com/backup",
		Timestamp: now,
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(token[:len("sigma-bound:")+len(signer.Address())])

	// The server: the same token for this request and issuer...
	req := authtoken.Request{Method: "DELETE", Target: "/backup", Issuer: "https://auth.example.com"}
	res, err := authtoken.VerifyToken(token, req, nil, now.Add(time.Second), 0)
	fmt.Println(res.Address, res.Bound, err)

	// ...but not for a GET, nor at another server.
	req.Method = "GET"
	_, err = authtoken.VerifyToken(token, req, nil, now.Add(time.Second), 0)
	fmt.Println(errors.CodeOf(err))
	// Output:
	// sigma-bound:15CRxFdyRpGZLW9w8HnHvVduizdL5jKNbs
	// 15CRxFdyRpGZLW9w8HnHvVduizdL5jKNbs true <nil>
	// invalid_signature
}

// The npm bitcoin-auth library's syntax, with a body, in the unbound form
// (the request path alone), as older clients send it.
func ExampleToken_bitcoinAuth() {
	const wif = "L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7"
	now := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	body := []byte("eyJ2IjoxfQ==")
	token, err := authtoken.Token(wif, authtoken.TokenOptions{
		Format:      authtoken.FormatBitcoinAuth,
		RequestPath: "/backup",
		Body:        body,
		Timestamp:   now,
	})
	if err != nil {
		panic(err)
	}
	p, _ := authtoken.ParseToken(token)
	fmt.Println(p.Scheme, p.Timestamp, p.RequestPath, p.Bound)
	fmt.Println(authtoken.SignedMessage(p.RequestPath, p.Timestamp, authtoken.BodyHash(body)))
	// Output:
	// bsm 2026-11-21T22:00:00.000Z /backup false
	// /backup|2026-11-21T22:00:00.000Z|bb47728a9c025305a35bee479a2e1280f20a309913c61ab86a8dfab1a194bbea
}
