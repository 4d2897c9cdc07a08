// A stand-in OpenID Connect provider for the console's SSO login: its authorization endpoint logs
// the browser in at once as `person` and sends it back with a code; its token endpoint checks the
// code, client and PKCE verifier and answers an RS256 ID token carrying the login's nonce; its JWKS
// publishes the key. The real provider cannot be reached from the test machines.

import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { createServer } from 'node:http';

const b64url = (data) => Buffer.from(data).toString('base64url');

/** Serves until `stop()`; `person` is the claims of whoever logs in (name and roles). */
export async function startIdp({ clientId, person }) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'browser-test', alg: 'RS256', use: 'sig' };
  const codes = new Map();
  let issuer = '';

  function idToken(nonce) {
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: jwk.kid }));
    const now = Math.floor(Date.now() / 1000);
    const payload = b64url(JSON.stringify({ iss: issuer, aud: clientId, sub: 'sso-1', iat: now, exp: now + 300, nonce, ...person }));
    return `${header}.${payload}.${b64url(sign('sha256', Buffer.from(`${header}.${payload}`), privateKey))}`;
  }

  const server = createServer(async (request, response) => {
    const url = new URL(request.url, issuer);
    const json = (status, body) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (request.method === 'GET' && url.pathname === '/authorize') {
      const q = url.searchParams;
      if (q.get('client_id') !== clientId || q.get('code_challenge_method') !== 'S256') return json(400, { error: 'invalid_request' });
      const code = b64url(randomBytes(16));
      codes.set(code, { nonce: q.get('nonce'), challenge: q.get('code_challenge'), redirect: q.get('redirect_uri') });
      const back = new URL(q.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', q.get('state'));
      response.writeHead(302, { location: back.toString() });
      return response.end();
    }
    if (request.method === 'POST' && url.pathname === '/token') {
      let body = '';
      for await (const chunk of request) body += chunk;
      const form = new URLSearchParams(body);
      const grant = codes.get(form.get('code'));
      codes.delete(form.get('code'));
      const verified = grant && b64url(createHash('sha256').update(form.get('code_verifier') ?? '').digest()) === grant.challenge;
      if (!verified || form.get('client_id') !== clientId || form.get('redirect_uri') !== grant.redirect) {
        return json(400, { error: 'invalid_grant' });
      }
      return json(200, { access_token: 'opaque', token_type: 'Bearer', id_token: idToken(grant.nonce) });
    }
    if (request.method === 'GET' && url.pathname === '/jwks') return json(200, { keys: [jwk] });
    return json(404, { error: 'not_found' });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${server.address().port}`;
  return { issuer, stop: () => new Promise((resolve) => server.close(resolve)) };
}
