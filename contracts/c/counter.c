/* A Pactum contract in C, without the Rust SDK: a counter per caller.
 *
 *   increment  adds 1 to the caller's counter and returns it (8 bytes, little-endian)
 *   get        returns the caller's counter (0 if it never incremented)
 *
 * Build (clang and wasm-ld, from Debian's clang and lld packages):
 *
 *   clang --target=wasm32-unknown-unknown -O2 -nostdlib -fno-builtin \
 *     -Wl,--no-entry -Wl,--export=pactum_init -Wl,--export=pactum_call \
 *     -Wl,--strip-all -o counter.wasm counter.c
 *
 * There is no C library: -fno-builtin stops clang turning loops into calls to memcpy or
 * memset, which nothing would provide (or define them yourself). The module's imports
 * come only from "pactum_v1", with exactly the signatures of docs/contract-abi.md.
 */

#include <stdint.h>

#define PACTUM_IMPORT(name) __attribute__((import_module("pactum_v1"), import_name(name)))

PACTUM_IMPORT("method_size") int32_t method_size(void);
PACTUM_IMPORT("method_copy") void method_copy(uint8_t *into);
PACTUM_IMPORT("caller") void caller(uint8_t *into);
PACTUM_IMPORT("storage_get")
int32_t storage_get(const uint8_t *key, int32_t key_len, uint8_t *value, int32_t value_cap);
PACTUM_IMPORT("storage_set")
void storage_set(const uint8_t *key, int32_t key_len, const uint8_t *value, int32_t value_len);
PACTUM_IMPORT("return_set") void return_set(const uint8_t *data, int32_t len);
PACTUM_IMPORT("revert") void revert(const uint8_t *reason, int32_t len);

static uint8_t method[64];
static uint8_t key[32];
static uint8_t value[8];

static int is_method(const char *name, int32_t length) {
    for (int32_t i = 0; i < length; i++) {
        if (name[i] == 0 || name[i] != (char)method[i]) return 0;
    }
    return name[length] == 0;
}

static uint64_t load(void) {
    caller(key);
    if (storage_get(key, 32, value, 8) != 8) return 0;
    uint64_t count = 0;
    for (int i = 7; i >= 0; i--) count = (count << 8) | value[i];
    return count;
}

static void answer(uint64_t count) {
    for (int i = 0; i < 8; i++) value[i] = (uint8_t)(count >> (8 * i));
    return_set(value, 8);
}

void pactum_init(void) {}

void pactum_call(void) {
    int32_t length = method_size();
    if (length > 64) length = 64;
    method_copy(method);
    if (is_method("increment", length)) {
        uint64_t count = load() + 1;
        for (int i = 0; i < 8; i++) value[i] = (uint8_t)(count >> (8 * i));
        storage_set(key, 32, value, 8);
        answer(count);
    } else if (is_method("get", length)) {
        answer(load());
    } else {
        static const char unknown[] = "unknown method";
        revert((const uint8_t *)unknown, (int32_t)(sizeof unknown - 1));
    }
}
