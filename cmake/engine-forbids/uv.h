/* Found instead of libuv's uv.h by every source of the engine (fsm/): the
 * engine runs on any scheduler and knows no libuv (see cmake/layers.cmake). */
#error "fsm/ is the engine: it must not include <uv.h> (io/ is where libuv lives)"
