// A real OpenID provider for the browser tests, on loopback: npm's oidc-provider with its development login
// form (any user name and password are accepted). Every user holds the role the tests ask for.
//   node oidc_provider.mjs <oidc-provider package dir> <port> <client id> <redirect uri> <role>
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [packageDir, port, clientId, redirectUri, role] = process.argv.slice(2);
const { default: Provider } = await import(pathToFileURL(join(packageDir, "node_modules/oidc-provider/lib/index.js")));

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    token_endpoint_auth_method: "none", // a public client: PKCE proves the code
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [redirectUri.replace(/callback$/, "logged-out")],
    grant_types: ["authorization_code"],
    response_types: ["code"],
  }],
  claims: { openid: ["sub"], profile: ["name", "roles"] },
  // Put the scope's claims (the roles) in the ID token, which is what Herald's admin UI reads.
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, name: id, roles: [role] }),
  }),
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`oidc-provider listening on ${issuer}`));
