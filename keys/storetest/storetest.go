// Package storetest is the conformance suite of keys.Store: every store
// implementation runs it, so that they all behave alike.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) keys.Store { return openTestStore(t) })
//	}
//
// It checks every method of the contract directly (records, errors matched
// with errors.Is, cursors and ordering, links and sessions, usage), every
// lifecycle and invalidation rule through keys.Service over the store, and
// concurrent writers.
package storetest

import (
	"testing"

	"github.com/keygate/keygate/keys"
)

// Opener returns a new, empty store for one test and arranges (with
// t.Cleanup) for it to be closed and removed afterwards.
type Opener func(t *testing.T) keys.Store

// Run runs the whole suite against the stores open returns, one fresh
// store per test, as parallel subtests.
func Run(t *testing.T, open Opener) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open)
		})
	}
}

var tests = []struct {
	name string
	fn   func(t *testing.T, open Opener)
}{
	// Through keys.Service: the lifecycle and invalidation rules.
	{"Service/LifecycleSmoke", testLifecycleSmoke},
	{"Service/KeyTypesLifecycle", testKeyTypesLifecycle},
	{"Service/InvalidationRules", testInvalidationRules},
	{"Service/TypeDisabled", testTypeDisabled},
	{"Service/Import", testImport},
	{"Service/ImportIgnoresDefaultExpiration", testImportIgnoresDefaultExpiration},
	{"Service/CreateKeyBadInput", testCreateKeyBadInput},
	{"Service/OwnerFieldsRejectControlCharacters", testOwnerFieldsRejectControlCharacters},
	{"Service/Pagination", testPagination},
	{"Service/ConcurrentWrites", testConcurrentWrites},
	{"Service/DeletedCreatorDetached", testDeletedCreatorDetached},
	{"Service/AuditEvents", testAuditEvents},
	{"Service/ChangesNamed", testChangesNamed},
	{"Service/RollKey", testRollKey},
	{"Service/RollKeyGrace", testRollKeyGrace},
	{"Service/RollImportedKey", testRollImportedKey},
	{"Service/QuotaOverridesStored", testQuotaOverridesStored},
	{"Store/QuotaUsage", testQuotaUsageStore},
	{"Service/CalendarExpiration", testCalendarExpiration},
	{"Service/MetadataDepth", testMetadataDepth},
	{"Service/ShortImportedTokens", testShortImportedTokens},
	{"Service/RateWindowBounded", testRateWindowBounded},
	{"Service/EventSink", testServiceEventSink},

	// The store directly, primitive by primitive.
	{"Store/Keys", testStoreKeys},
	{"Store/LookupHash", testStoreLookupHash},
	{"Store/RecentIdentities", testStoreRecentIdentities},
	{"Store/ArchiveAndDetach", testStoreArchiveAndDetach},
	{"Store/Owners", testStoreOwners},
	{"Store/OwnerCursors", testStoreOwnerCursors},
	{"Store/ListKeys", testStoreListKeys},
	{"Store/Audit", testStoreAudit},
	{"Store/Usage", testStoreUsage},
	{"Store/PortalLinks", testStoreLinks},
	{"Store/Sessions", testStoreSessions},
	{"Store/SerialisedUpdates", testStoreSerialisedUpdates},
	{"Store/Ping", testStorePing},
	{"Store/Outbox", testStoreOutbox},
	{"Store/ClaimConcurrent", testStoreClaimConcurrent},
	{"Store/ExpiryVerbs", testStoreExpiryVerbs},
}
