// Pseudonymised user IDs: every raw user ID of a dataset replaced by its keyed hash (32 hex
// digits of keyed BLAKE2b, adrec/core/crypto.h) before anything is written, so the dataset, its
// splits, bundles and logs never hold a raw ID. The same key maps the same raw ID to the same
// pseudonym, so logs imported later (and the server, given the key) join up; without the key a
// pseudonym can neither be reversed nor recomputed.
#pragma once

#include "adrec/core/crypto.h"
#include "adrec/core/status.h"
#include "adrec/data/dataset.h"

namespace adrec::data {

// Rewrites ds->users in place (IDs and order unchanged; only the names change) and records it in
// ds->info's provenance. Other user attributes are left as they are: columns that identify a
// person (a zip code, an e-mail) are the importer's schema to drop.
Status PseudonymiseUsers(Dataset* ds, const SecretKey& key);

// The pseudonym of one raw user ID: what a request or an event must carry to name that user.
std::string UserPseudonym(const SecretKey& key, std::string_view raw_id);

}  // namespace adrec::data
