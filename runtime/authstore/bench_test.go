package authstore

// Benchmarks of the two hot paths, on each engine: the bearer check's
// lookup (LookupAccess, which a server's token cache usually spares) and
// a refresh (RotateRefresh). PostgreSQL runs when MCP_TEST_POSTGRES is set:
//
//	MCP_TEST_POSTGRES=postgres://… go test -run '^$' -bench . ./internal/authstore

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchTokens is how many access tokens the lookup benchmark stores.
const benchTokens = 1_000

func BenchmarkLookupAccess(b *testing.B) {
	for _, e := range testEngines() {
		b.Run(e.name, func(b *testing.B) {
			s := openDSN(b, e.newDSN(b), Options{})
			ctx := b.Context()
			now := time.Now()
			for i := range benchTokens / 100 { // 100 tokens per grant
				c := seedCode(b, s, fmt.Sprint("code-", i), now.Add(time.Minute))
				redeem(b, s, c, pairFor(fmt.Sprint(i, "-0")), now)
				for j := 1; j < 100; j++ {
					if _, err := s.RotateRefresh(ctx, pairFor(fmt.Sprint(i, "-", j-1)).RefreshHash,
						pairFor(fmt.Sprint(i, "-", j)), time.Minute, now); err != nil {
						b.Fatal(err)
					}
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for b.Loop() {
				p := pairFor(fmt.Sprint(rng.IntN(benchTokens/100), "-", rng.IntN(100)))
				if _, err := s.LookupAccess(ctx, p.AccessHash, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRotateRefresh(b *testing.B) {
	for _, e := range testEngines() {
		b.Run(e.name, func(b *testing.B) {
			s := openDSN(b, e.newDSN(b), Options{})
			ctx := b.Context()
			now := time.Now()
			c := seedCode(b, s, "code", now.Add(time.Minute))
			redeem(b, s, c, pairFor("0"), now)
			i := 0
			for b.Loop() {
				out, err := s.RotateRefresh(ctx, pairFor(fmt.Sprint(i)).RefreshHash, pairFor(fmt.Sprint(i+1)), time.Minute, now)
				if err != nil || out != Rotated {
					b.Fatal(out, err)
				}
				i++
			}
		})
	}
}
