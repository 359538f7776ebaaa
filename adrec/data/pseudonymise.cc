#include "adrec/data/pseudonymise.h"

#include <string>
#include <vector>

namespace adrec::data {

std::string UserPseudonym(const SecretKey& key, std::string_view raw_id) {
  // 16 bytes: collisions need ~2^64 users; a domain prefix keeps user pseudonyms apart from
  // any other keyed hash made with the same key.
  return KeyedHashHex(key, std::string("adrec-user\x1f").append(raw_id), 16);
}

Status PseudonymiseUsers(Dataset* ds, const SecretKey& key) {
  std::vector<std::string> names = ds->users.names();
  for (std::string& n : names) {
    if (!n.empty()) n = UserPseudonym(key, n);  // "" is the missing user, not an ID
  }
  StatusOr<Vocabulary> v = Vocabulary::FromNames(std::move(names));
  if (!v.ok()) return InternalError("pseudonymising users: two IDs hashed to one pseudonym: " + v.status().message());
  ds->users = std::move(*v);
  ds->info.provenance += (ds->info.provenance.empty() ? "" : "; ") +
                         std::string("user IDs pseudonymised (keyed BLAKE2b, 128 bits)");
  return Status::Ok();
}

}  // namespace adrec::data
