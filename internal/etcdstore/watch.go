package etcdstore

import (
	"context"
	"maps"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"recommendation-api/internal/model"
)

// WatchActives reports the active version of every major: first the
// current ones, then the whole map again each time any major's active
// pointer changes, by any replica. A receiver that falls behind gets the
// newest map, not every one in between (the channel holds one). When the
// watch breaks (a member dies, the revision was compacted) it reads the
// pointers again and resumes, so no change is missed for good. The channel
// is closed when ctx ends. Each map is the receiver's own.
func (s *Store) WatchActives(ctx context.Context) <-chan map[int]model.Version {
	out := make(chan map[int]model.Version, 1)
	go func() {
		defer close(out)
		var (
			cur     map[int]model.Version
			pending bool
		)
		prefix := s.key("active") + "/"
		for ctx.Err() == nil {
			// Read the pointers, then watch from the next revision.
			rctx, cancel := context.WithTimeout(ctx, s.timeout)
			resp, err := s.client.Get(rctx, prefix, clientv3.WithPrefix())
			cancel()
			var fresh map[int]model.Version
			if err == nil {
				fresh, err = decodeActives((*clientv3.GetResponse)(resp))
			}
			if err != nil {
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			if cur == nil || !maps.Equal(cur, fresh) {
				cur, pending = fresh, true
			}
			wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			wch := s.client.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
			broken := false
			for !broken {
				var send chan<- map[int]model.Version
				if pending {
					send = out
				}
				select {
				case <-ctx.Done():
					broken = true
				case send <- maps.Clone(cur):
					pending = false
				case wr, ok := <-wch:
					if !ok || wr.Err() != nil || wr.Canceled {
						broken = true
						break
					}
					next := maps.Clone(cur)
					for _, ev := range wr.Events {
						if ev.Type == clientv3.EventTypeDelete {
							// Pointers are never deleted by the registry;
							// re-read to learn which major it was.
							broken = true
							continue
						}
						if v, err := model.ParseVersion(string(ev.Kv.Value)); err == nil {
							next[v.Major] = v
						}
					}
					if !maps.Equal(cur, next) {
						cur, pending = next, true
					}
				}
			}
			wcancel()
			if ctx.Err() == nil {
				// A broken watch: let the cluster settle before re-reading.
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
	return out
}
