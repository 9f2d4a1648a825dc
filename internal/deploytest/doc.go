// Package deploytest checks the files that deploy authd, the Dockerfile and
// docker-compose.yml at the root of the module, against the code: the
// environment names compose sets must be ones cmd/authd reads, the services
// it names must exist, and the image must build with the Go version go.mod
// asks for. There is no Docker engine where the tests run, so the files are
// parsed, not run. The package has no code outside its test.
package deploytest
