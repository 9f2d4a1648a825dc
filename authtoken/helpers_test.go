package authtoken

import "time"

// Test keys. Never use them for anything else.
const (
	// Bitcoin Core's message_sign test key (util_tests.cpp), compressed.
	testWIF     = "L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7"
	testAddress = "15CRxFdyRpGZLW9w8HnHvVduizdL5jKNbs"
	// Private key 1, uncompressed (bitcoinjs-message fixtures).
	testWIFUncompressed = "5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf"
	// The @bsv/sdk BSM test key.
	otherWIF = "L211enC224G1kV8pyyq7bjVd9SxZebnRYEzzM3i7ZHCc1c5E7dQu"
)

var testStart = time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)

// testIssuer is the issuer bound tokens in these tests name.
const testIssuer = "https://auth.example.com"

// verifyPath verifies an unbound token for a GET of target, as the tests
// written before the bound form did.
func verifyPath(token, target string, body []byte, now time.Time) (Result, error) {
	return VerifyToken(token, Request{Method: "GET", Target: target, Issuer: testIssuer}, body, now, 0)
}
