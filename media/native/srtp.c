// SRTP's two hot primitives for media/srtp/context.ts, on the OpenSSL that Node itself uses:
// AES counter-mode keystream XOR (RFC 3711 §4.1.1) with one key schedule per context, and
// HMAC-SHA1 (RFC 3711 §4.2) from precomputed inner and outer digest states.
//
// Why: through node:crypto one protect + unprotect pair cost ~10.4 µs here (96,000 pairs/s in
// test/bench/srtp.bench.ts: an ECB cipher object, an Hmac object and three Buffers per packet);
// the same work through these calls is measured by the same bench (see the README figures).
// media/srtp/native.ts falls back to the node:crypto code when this addon is missing.
#include <stdlib.h>
#include <string.h>

#include <node_api.h>
#include <openssl/evp.h>

typedef struct {
  EVP_CIPHER_CTX *ctx;
} aes_t;

typedef struct {
  EVP_MD_CTX *inner;
  EVP_MD_CTX *outer;
  EVP_MD_CTX *work;
} hmac_t;

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static void aes_free(napi_env env, void *data, void *hint) {
  aes_t *a = data;
  EVP_CIPHER_CTX_free(a->ctx);
  free(a);
}

static void hmac_free(napi_env env, void *data, void *hint) {
  hmac_t *h = data;
  EVP_MD_CTX_free(h->inner);
  EVP_MD_CTX_free(h->outer);
  EVP_MD_CTX_free(h->work);
  free(h);
}

// aesCtr(key: Buffer (16, 24 or 32 bytes)): handle
static napi_value js_aes_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *key;
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (napi_get_buffer_info(env, argv[0], &key, &len) != napi_ok) return fail(env, "aes: key must be a Buffer");
  const EVP_CIPHER *c = len == 16 ? EVP_aes_128_ctr() : len == 24 ? EVP_aes_192_ctr() : len == 32 ? EVP_aes_256_ctr() : NULL;
  if (c == NULL) return fail(env, "aes: key must be 16, 24 or 32 bytes");
  aes_t *a = calloc(1, sizeof *a);
  if (a == NULL) return fail(env, "aes: out of memory");
  a->ctx = EVP_CIPHER_CTX_new();
  if (a->ctx == NULL || EVP_EncryptInit_ex(a->ctx, c, NULL, key, NULL) != 1) {
    EVP_CIPHER_CTX_free(a->ctx);
    free(a);
    return fail(env, "aes: cipher set-up failed");
  }
  napi_value ext;
  if (napi_create_external(env, a, aes_free, NULL, &ext) != napi_ok) return NULL;
  return ext;
}

// aesCtrXor(handle, out: Buffer, src: Buffer, start, end, iv: Buffer(16)): out[start..end) = src ^ keystream(iv)
// The SRTP IV ends in 16 zero bits and a datagram has < 2^16 blocks, so OpenSSL's 128-bit
// counter increment equals RFC 3711's "IV + j".
static napi_value js_aes_xor(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  aes_t *a;
  uint8_t *out, *src, *iv;
  size_t out_len, src_len, iv_len;
  uint32_t start, end;
  if (napi_get_value_external(env, argv[0], (void **)&a) != napi_ok ||
      napi_get_buffer_info(env, argv[1], (void **)&out, &out_len) != napi_ok ||
      napi_get_buffer_info(env, argv[2], (void **)&src, &src_len) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &start) != napi_ok || napi_get_value_uint32(env, argv[4], &end) != napi_ok ||
      napi_get_buffer_info(env, argv[5], (void **)&iv, &iv_len) != napi_ok)
    return fail(env, "aesCtrXor: bad arguments");
  if (end <= start) return NULL;
  if (end > out_len || end > src_len || iv_len < 16) return fail(env, "aesCtrXor: range outside the buffers");
  int n = 0;
  if (EVP_EncryptInit_ex(a->ctx, NULL, NULL, NULL, iv) != 1 ||
      EVP_EncryptUpdate(a->ctx, out + start, &n, src + start, (int)(end - start)) != 1)
    return fail(env, "aesCtrXor: cipher failed");
  return NULL;
}

static int pad_state(EVP_MD_CTX *ctx, const uint8_t *key, size_t len, uint8_t pad) {
  uint8_t block[64];
  memset(block, 0, sizeof block);
  memcpy(block, key, len);
  for (int i = 0; i < 64; i++) block[i] ^= pad;
  return EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 && EVP_DigestUpdate(ctx, block, sizeof block) == 1;
}

// hmacSha1(key: Buffer (≤ 64 bytes)): handle
static napi_value js_hmac_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  uint8_t *key;
  size_t len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (napi_get_buffer_info(env, argv[0], (void **)&key, &len) != napi_ok || len > 64) return fail(env, "hmac: key must be a Buffer of at most 64 bytes");
  hmac_t *h = calloc(1, sizeof *h);
  if (h == NULL) return fail(env, "hmac: out of memory");
  h->inner = EVP_MD_CTX_new();
  h->outer = EVP_MD_CTX_new();
  h->work = EVP_MD_CTX_new();
  if (h->inner == NULL || h->outer == NULL || h->work == NULL || !pad_state(h->inner, key, len, 0x36) ||
      !pad_state(h->outer, key, len, 0x5c)) {
    hmac_free(env, h, NULL);
    return fail(env, "hmac: digest set-up failed");
  }
  napi_value ext;
  if (napi_create_external(env, h, hmac_free, NULL, &ext) != napi_ok) return NULL;
  return ext;
}

// hmacSha1Sign(handle, buf: Buffer, end, roc (-1: none), out: Buffer(≥ 20)): out[0..20) = HMAC(buf[0..end) || ROC)
static napi_value js_hmac_sign(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  hmac_t *h;
  uint8_t *buf, *out;
  size_t buf_len, out_len;
  uint32_t end;
  double roc;
  if (napi_get_value_external(env, argv[0], (void **)&h) != napi_ok ||
      napi_get_buffer_info(env, argv[1], (void **)&buf, &buf_len) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &end) != napi_ok || napi_get_value_double(env, argv[3], &roc) != napi_ok ||
      napi_get_buffer_info(env, argv[4], (void **)&out, &out_len) != napi_ok)
    return fail(env, "hmacSha1Sign: bad arguments");
  if (end > buf_len || out_len < 20) return fail(env, "hmacSha1Sign: range outside the buffers");
  uint8_t inner[20];
  unsigned int n = 0;
  int ok = EVP_MD_CTX_copy_ex(h->work, h->inner) == 1 && EVP_DigestUpdate(h->work, buf, end) == 1;
  if (ok && roc >= 0) {
    uint32_t r = (uint32_t)roc;
    uint8_t word[4] = {(uint8_t)(r >> 24), (uint8_t)(r >> 16), (uint8_t)(r >> 8), (uint8_t)r};
    ok = EVP_DigestUpdate(h->work, word, 4) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(h->work, inner, &n) == 1 && EVP_MD_CTX_copy_ex(h->work, h->outer) == 1 &&
       EVP_DigestUpdate(h->work, inner, 20) == 1 && EVP_DigestFinal_ex(h->work, out, &n) == 1;
  if (!ok) return fail(env, "hmacSha1Sign: digest failed");
  return NULL;
}

napi_value srtp_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"aesCtr", NULL, js_aes_new, NULL, NULL, NULL, napi_default, NULL},
      {"aesCtrXor", NULL, js_aes_xor, NULL, NULL, NULL, napi_default, NULL},
      {"hmacSha1", NULL, js_hmac_new, NULL, NULL, NULL, napi_default, NULL},
      {"hmacSha1Sign", NULL, js_hmac_sign, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}
