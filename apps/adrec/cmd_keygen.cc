// adrec keygen: a new secret key file (32 random bytes as hex, owner-only) for pseudonymised
// user IDs (`adrec import --pseudonymise-users`).
#include "adrec/core/crypto.h"
#include "apps/adrec/cli.h"

namespace adrec::cli {

void AddKeygenCommand(CLI::App& app, Context& ctx) {
  auto out = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("keygen", "Write a new secret key file (owner-only; never replaces one)");
  cmd->add_option("--out", *out, "Key file to create")->required();
  AddJsonFlag(cmd, ctx);
  cmd->callback([out, &ctx] {
    ctx.run = [out, &ctx]() -> Status {
      ADREC_RETURN_IF_ERROR(WriteNewKeyFile(*out));
      PrintResult(ctx, {{"key_file", *out}, {"bytes", 32}});
      return Status::Ok();
    };
  });
}

}  // namespace adrec::cli
