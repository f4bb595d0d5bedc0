/* lockstep/version.h - the library's version, and what every public header
 * needs: the export marker and the C++ linkage guards.
 *
 * LOCKSTEP_VERSION_* are the headers' version, ls_version() the library's
 * that was loaded: a program built against 0.2 headers and run with a 0.1
 * library can see it. The build takes its version from this file.
 */
#ifndef LOCKSTEP_VERSION_H
#define LOCKSTEP_VERSION_H

#define LOCKSTEP_VERSION_MAJOR 0
#define LOCKSTEP_VERSION_MINOR 1
#define LOCKSTEP_VERSION_PATCH 0
#define LOCKSTEP_VERSION_STRING "0.1.0"
/* For #if: LOCKSTEP_VERSION >= LOCKSTEP_VERSION_AT(0, 2, 0). */
#define LOCKSTEP_VERSION_AT(major, minor, patch) (((major) << 16) | ((minor) << 8) | (patch))
#define LOCKSTEP_VERSION \
    LOCKSTEP_VERSION_AT(LOCKSTEP_VERSION_MAJOR, LOCKSTEP_VERSION_MINOR, LOCKSTEP_VERSION_PATCH)

/* What liblockstep.so exports: the library is built with hidden visibility
 * and every function of the API carries LS_API. */
#if defined(__GNUC__)
#define LS_API __attribute__((visibility("default")))
#else
#define LS_API
#endif

#ifdef __cplusplus
#define LS_BEGIN_DECLS extern "C" {
#define LS_END_DECLS }
#else
#define LS_BEGIN_DECLS
#define LS_END_DECLS
#endif

LS_BEGIN_DECLS

/* "MAJOR.MINOR.PATCH" of the library in use. */
LS_API const char *ls_version(void);

LS_END_DECLS

#endif
