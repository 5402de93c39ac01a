import t from 'tap';
import { formAliasRefusal } from '../../../src/net/form-alias.js';

t.test('formAliasRefusal: form types other than application/x-www-form-urlencoded', async (t) => {
  for (const type of [
    'application/x-url-encoded',
    'APPLICATION/X-URL-ENCODED; charset=utf-8',
    'application/x-url-encoded,x',
    'application/x-urlencoded',
    'text/x-www-form-urlencoded',
    'text/plain; x=urlencoded',
    'application/octet-stream; v="URLEncoded"',
  ]) {
    const refusal = formAliasRefusal(type);
    t.equal(refusal?.code, 'ERR_MEDIA_TYPE_UNSUPPORTED', `${type}: refused`);
    t.equal(refusal?.rule, 'content_type.form_alias', `${type}: rule`);
  }
  // The form type, and the shapes contentTypeRefusal decides on (its own rules name the reader).
  for (const type of [
    undefined,
    '',
    'application/x-www-form-urlencoded',
    'Application/X-WWW-Form-URLEncoded; charset=UTF-8',
    'application/x-www-form-urlencodedx',
    'text/plain; x="application/x-www-form-urlencoded"',
    '*/x-www-form-urlencoded',
    'application/json',
    'multipart/form-data; boundary=BB',
    'text/plain; charset=utf-8',
    // `url-encoded` in a parameter: Werkzeug reads the media type only, formidable `urlencoded` (review1 F4).
    'application/json; profile="https://schemas.example/url-encoded"',
    'image/png; name="my-url-encoded.png"',
    'multipart/form-data; boundary=----url-encoded-part',
    // The form type, read as a form by all (Werkzeug by its media type, formidable by `urlencoded`).
    'application/x-www-form-urlencoded; x=application/x-url-encoded',
  ])
    t.equal(formAliasRefusal(type), undefined, `${String(type)}: not this rule's`);
});
