package ratelimit_test

import (
	"fmt"
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"

	"github.com/authd-dev/authd/ratelimit"
)

func ExampleParsePolicies() {
	ps, err := ratelimit.ParsePolicies("token=100/1m, login=3/30s")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ps[ratelimit.Token])
	fmt.Println(ps[ratelimit.Login])
	fmt.Println(ps[ratelimit.Authorize])

	_, err = ratelimit.ParsePolicies("tokne=100/1m")
	fmt.Println(err)
	// Output:
	// token=100/1m0s
	// login=3/30s
	// authorize=20/1m0s
	// rate limit "tokne=100/1m": unknown policy "tokne" (known: authorize, backup_ip, backup_read, backup_write, introspect, login, register, revoke, token, userinfo)
}

func ExampleLimiter_Middleware() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	proxies, err := ratelimit.ParseProxies("10.0.0.0/8")
	if err != nil {
		log.Fatal(err)
	}
	policies, err := ratelimit.ParsePolicies("")
	if err != nil {
		log.Fatal(err)
	}
	lim, err := ratelimit.New(rdb, ratelimit.Options{Proxies: proxies})
	if err != nil {
		log.Fatal(err)
	}
	// identity reads what the authentication middleware, which runs
	// before the limiter on subject-keyed routes, put in the context.
	identity := func(r *http.Request) (string, bool) { return "", false }

	token, userinfo := http.NotFoundHandler(), http.NotFoundHandler()
	mux := http.NewServeMux()
	mux.Handle("POST /token", lim.Middleware(policies[ratelimit.Token], nil)(token))
	mux.Handle("GET /userinfo", lim.Middleware(policies[ratelimit.Userinfo], identity)(userinfo))
}
