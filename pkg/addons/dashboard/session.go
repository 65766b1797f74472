package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"sort"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// session is one logged-in browser: the user's bearer token stays here, in the dashboard's
// memory, and never reaches the page; the page holds only the session cookie (HttpOnly) and the
// CSRF token it sends with every change.
type session struct {
	token   string
	user    string
	csrf    string
	created time.Time
	expires time.Time
}

// sessions are the logged-in browsers, by session ID.
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	byID map[string]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, now: time.Now, byID: map[string]*session{}}
}

// randomID is 32 random bytes, URL-safe: unguessable as a session ID or CSRF token.
func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// add starts a session for a verified token and returns its ID.
func (s *sessions) add(token, user string) (string, *session) {
	id := randomID()
	now := s.now()
	ss := &session{token: token, user: user, csrf: randomID(), created: now, expires: now.Add(s.ttl)}
	s.mu.Lock()
	s.byID[id] = ss
	s.mu.Unlock()
	return id, ss
}

// get is the live session with this ID, or nil.
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[id]
	if ss == nil || !s.now().Before(ss.expires) {
		delete(s.byID, id)
		return nil
	}
	return ss
}

// tokens are the live sessions' tokens, the most recent login first.
func (s *sessions) tokens() []string {
	now := s.now()
	s.mu.Lock()
	live := make([]*session, 0, len(s.byID))
	for _, ss := range s.byID {
		if now.Before(ss.expires) {
			live = append(live, ss)
		}
	}
	s.mu.Unlock()
	sort.Slice(live, func(i, j int) bool { return live[i].created.After(live[j].created) })
	out := make([]string, len(live))
	for i, ss := range live {
		out[i] = ss.token
	}
	return out
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.byID, id)
	s.mu.Unlock()
}

// sweep drops expired sessions every interval until ctx ends, so tokens do not outlive them
// in memory.
func (s *sessions) sweep(ctx context.Context, interval time.Duration) {
	wait.UntilWithContext(ctx, func(context.Context) {
		now := s.now()
		s.mu.Lock()
		for id, ss := range s.byID {
			if !now.Before(ss.expires) {
				delete(s.byID, id)
			}
		}
		s.mu.Unlock()
	}, interval)
}

// csrfOK compares a request's CSRF token with the session's in constant time.
func (ss *session) csrfOK(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) == 1
}
