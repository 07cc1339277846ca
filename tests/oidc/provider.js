// Test-only OpenID provider on 127.0.0.1 (panva/oidc-provider), for Sentra's login tests.
//
// - signs with the keys in the private JWKS file named by OIDC_JWKS_FILE (the tests generate
//   them: an ES256 key first, an RS256 key beside it), and publishes their public halves;
// - one public client (token_endpoint_auth_method none, PKCE S256 required), a native app
//   with the loopback redirect http://127.0.0.1/callback (any port, RFC 8252);
// - access tokens are JWTs shaped like Supabase's: aud "authenticated", role "authenticated",
//   sub the account's id (resource indicators, a default resource, JWT format);
// - offline_access gives refresh tokens, rotated on every use (a used one is dead);
// - the login and consent pages are this file's own small HTML forms (no devInteractions),
//   which the tests fill in with HTTP requests, the way a browser would.
//
// Prints "READY <issuer>" on stdout once it listens. Never prints a token or a code.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const jwks = JSON.parse(readFileSync(process.env.OIDC_JWKS_FILE, 'utf8'));
const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || '{}'); // login -> {password, sub}
const clientId = process.env.OIDC_CLIENT_ID || 'sentra-cli';
const audience = process.env.OIDC_AUDIENCE || 'authenticated';
const accessTtl = Number(process.env.OIDC_ACCESS_TTL || 600);
const RESOURCE = 'urn:sentra:api';

let handler = (req, res) => { res.statusCode = 503; res.end(); };
const server = createServer((req, res) => handler(req, res));

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!doctype html><meta charset=utf-8><title>${esc(title)}</title>${body}`;

function readForm(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      data += chunk;
      if (data.length > 10000) reject(new Error('body too large'));
    });
    req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(data))));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

function loginForm(uid, error) {
  return page('Sign in', `${error ? `<p class=error>${esc(error)}</p>` : ''}
<form method=post action="/interaction/${esc(uid)}/login">
<input name=login autocomplete=username><input name=password type=password>
<button type=submit>Sign in</button></form>`);
}

function consentForm(uid, clientName) {
  return page('Authorize', `<p>${esc(clientName)} asks for access.</p>
<form method=post action="/interaction/${esc(uid)}/confirm"><button type=submit>Allow</button></form>
<form method=post action="/interaction/${esc(uid)}/abort"><button type=submit>Deny</button></form>`);
}

async function interactions(provider, req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  const match = url.pathname.match(/^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/);
  if (!match) return false;
  const [, uid, action] = match;
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<p>interaction mismatch</p>'));
    return true;
  }
  const { prompt, params, session, grantId } = details;
  if (req.method === 'GET' && !action) {
    if (prompt.name === 'login') send(res, 200, loginForm(uid));
    else send(res, 200, consentForm(uid, params.client_id));
    return true;
  }
  if (req.method !== 'POST') {
    send(res, 405, page('Error', '<p>method not allowed</p>'));
    return true;
  }
  const form = await readForm(req);
  if (action === 'login') {
    const account = accounts[form.login];
    if (prompt.name !== 'login' || !account || account.password !== form.password) {
      send(res, 200, loginForm(uid, 'wrong user name or password'));
      return true;
    }
    await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
    return true;
  }
  if (action === 'abort') {
    await provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user denied access' }, { mergeWithLastSubmission: false });
    return true;
  }
  // confirm: grant what the consent prompt asks for
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scope.join(' '));
    }
  }
  const result = { consent: { grantId: await grant.save() } };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
  return true;
}

server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    jwks,
    clients: [{
      client_id: clientId,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1/callback'],
      id_token_signed_response_alg: 'ES256',
    }],
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    claims: { openid: ['sub'] },
    scopes: ['openid', 'offline_access'],
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: '',
            audience,
            accessTokenTTL: accessTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    extraTokenClaims: async () => ({ role: 'authenticated' }),
    rotateRefreshToken: true,
    ttl: {
      AccessToken: accessTtl,
      AuthorizationCode: 60,
      Grant: 3600,
      Interaction: 600,
      Session: 3600,
      IdToken: 600,
      RefreshToken: 3600,
    },
  });
  provider.on('server_error', (ctx, err) => { process.stderr.write(`server_error: ${err && err.message}\n`); });
  const callback = provider.callback();
  handler = (req, res) => {
    interactions(provider, req, res).then((done) => {
      if (!done) callback(req, res);
    }).catch((err) => {
      process.stderr.write(`interaction error: ${err && err.name}\n`);
      if (!res.headersSent) send(res, 400, page('Error', `<p>${esc(err && err.name)}</p>`));
    });
  };
  process.stdout.write(`READY ${issuer}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
