/* test/fuzz/fuzz_xl_header.c - the xl save-file header and its JSON config.
 *
 * An input that starts with xl's magic is a header: the fixed 48 bytes, the
 * optional data after them, the config inside it and that config parsed as
 * restore parses it. Any other input is a JSON config: it is parsed as
 * restore parses it, and wrapped in a header by the encoder, which must
 * decode back to the same text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "fuzz/fuzz_common.h"
#include "io/records.h"
#include "states/restore.h"

#define XL_FIXED (XL_MAGIC_LEN + sizeof(struct xl_header))

static void parse_config(const char *json)
{
    struct ls_domain_config cfg;
    struct ls_errbuf e = { 0 };
    int rc = restore_parse_config(json, &cfg, &e);
    if (rc < 0 && !e.msg[0])
        abort();
    if (rc == 0 && cfg.type != LS_GUEST_PV && cfg.type != LS_GUEST_HVM &&
        cfg.type != LS_GUEST_PVH)
        abort();
    if (rc == 0 && memchr(cfg.name, '\0', sizeof(cfg.name)) == NULL)
        abort();
}

static void header(const uint8_t *data, size_t size)
{
    struct xl_header h;
    struct ls_errbuf e = { 0 };
    if (size < XL_FIXED || xl_header_decode(data, &h, &e) < 0)
        return;
    size_t avail = size - XL_FIXED;
    uint32_t len = h.optional_data_len < avail ? h.optional_data_len : (uint32_t)avail;
    /* A copy of exactly the optional data, so ASan sees any read past it. */
    uint8_t *opt = malloc(len ? len : 1);
    if (!opt)
        abort();
    memcpy(opt, data + XL_FIXED, len);
    const char *json = NULL;
    uint32_t json_len = 0;
    if (xl_header_config(opt, len, &json, &json_len, XL_FIXED, &e) == 0 && json) {
        char *text = strndup(json, json_len);
        if (!text)
            abort();
        parse_config(text);
        free(text);
    }
    free(opt);
}

static void config(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    parse_config(text);

    uint8_t *buf;
    size_t len;
    if (xl_header_encode(text, &buf, &len) < 0)
        abort();
    struct xl_header h;
    struct ls_errbuf e = { 0 };
    const char *json = NULL;
    uint32_t json_len = 0;
    if (len < XL_FIXED || xl_header_decode(buf, &h, &e) < 0 ||
        h.optional_data_len != len - XL_FIXED ||
        xl_header_config(buf + XL_FIXED, h.optional_data_len, &json, &json_len, XL_FIXED, &e) < 0 ||
        !json) {
        fprintf(stderr, "an encoded header did not decode: %s\n", e.msg);
        abort();
    }
    /* The encoder pads with spaces after the text; the text comes back. */
    size_t text_len = strlen(text);
    if (json_len < text_len || memcmp(json, text, text_len) != 0)
        abort();
    free(buf);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= XL_MAGIC_LEN && xl_header_magic_matches(data, size))
        header(data, size);
    else
        config(data, size);
    return 0;
}
