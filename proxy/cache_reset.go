package proxy

// Reset makes every entry stale at once, as if each had been named by an
// Invalidate: a node that lost the cluster's invalidation channel calls it
// on reconnecting, since it cannot know what it missed. Entries are
// reloaded from the store on their next use; lookups under way when Reset
// runs are not served from what they load.
func (c *Cache) Reset() {
	now := c.now().UnixNano()
	c.mu.Lock()
	g := c.gen.Load() + 1
	c.resetGen = g
	c.gen.Store(g) // after resetGen, as in Invalidate
	c.pruneLocked(now)
	c.mu.Unlock()
	// Every front slot's entry is stale now, as every other entry is;
	// dropping them lets them go sooner.
	c.clearFront()
}
