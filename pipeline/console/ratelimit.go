package console

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// loginLimiter limits login attempts per key (a user name, a client
// address): burst attempts at once, then one per every. It is safe for
// concurrent use; its memory is bounded by pruning idle keys.
type loginLimiter struct {
	every time.Duration
	burst int

	mu   sync.Mutex
	keys map[string]*rate.Limiter
}

func newLoginLimiter(every time.Duration, burst int) *loginLimiter {
	return &loginLimiter{every: every, burst: burst, keys: map[string]*rate.Limiter{}}
}

// allow takes one attempt for every key at now; false if any is spent.
func (l *loginLimiter) allow(now time.Time, keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.keys) > 100_000 {
		l.prune(now)
	}
	ok := true
	for _, k := range keys {
		lim := l.keys[k]
		if lim == nil {
			lim = rate.NewLimiter(rate.Every(l.every), l.burst)
			l.keys[k] = lim
		}
		if !lim.AllowN(now, 1) {
			ok = false
		}
	}
	return ok
}

// prune forgets keys whose limiter is full again (idle keys).
func (l *loginLimiter) prune(now time.Time) {
	for k, lim := range l.keys {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.keys, k)
		}
	}
}
