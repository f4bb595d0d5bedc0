# cmake -P: try what the layering forbids and check each attempt fails for
# the reason the layering gives (see test/layers/CMakeLists.txt).
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(failures 0)

function(flags_of var includes)
  set(out -std=gnu11 -D_GNU_SOURCE -fPIC)
  foreach(dir ${includes})
    list(APPEND out -I${dir})
  endforeach()
  set(${var} ${out} PARENT_SCOPE)
endfunction()
flags_of(fsm_flags "${FSM_INCLUDES}")
flags_of(io_flags "${IO_INCLUDES}")

# compile(NAME FLAGS-VAR SOURCE PREPEND EXPECT): SOURCE with PREPEND on its
# first line; EXPECT "ok" or a regex the compiler's error must match.
function(compile name flagsvar source prepend expect)
  file(READ ${SRC}/${source} text)
  set(file ${WORK}/${name}.c)
  file(WRITE ${file} "${prepend}\n${text}")
  execute_process(COMMAND ${CC} ${${flagsvar}} -c ${file} -o ${WORK}/${name}.o
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(expect STREQUAL "ok")
    if(rc EQUAL 0)
      message(STATUS "ok    ${name}: ${source} compiles as a layer source")
    else()
      message(STATUS "FAIL  ${name}: ${source} should compile:\n${out}")
      math(EXPR failures "${failures} + 1")
    endif()
  elseif(rc EQUAL 0)
    message(STATUS "FAIL  ${name}: ${source} with '${prepend}' compiled; the layering must refuse it")
    math(EXPR failures "${failures} + 1")
  elseif(NOT out MATCHES "${expect}")
    message(STATUS "FAIL  ${name}: refused, but not for the expected reason (${expect}):\n${out}")
    math(EXPR failures "${failures} + 1")
  else()
    string(REGEX MATCH "[^\n]*(error|Error)[^\n]*" first "${out}")
    message(STATUS "ok    ${name}: refused: ${first}")
  endif()
  set(failures ${failures} PARENT_SCOPE)
endfunction()

compile(engine_plain      fsm_flags fsm/fsm.c "" ok)
compile(engine_libuv      fsm_flags fsm/fsm.c "#include <uv.h>" "must not include <uv.h>")
compile(engine_io_header  fsm_flags fsm/fsm.c "#include \"io/fdio.h\"" "io/fdio.h: No such file")
compile(engine_qmp_header fsm_flags fsm/fsm.c "#include \"qmp/qmp.h\"" "qmp/qmp.h: No such file")
compile(engine_public_api fsm_flags fsm/fsm.c "#include \"lockstep/lockstep.h\""
        "lockstep/lockstep.h: No such file")
compile(io_plain          io_flags  io/fdio.c "" ok)
compile(io_role_header    io_flags  io/fdio.c "#include \"states/save.h\"" "states/save.h: No such file")

# The link rule: engine objects plus a call into io/ (declared by hand, so no
# header stops it) do not link without io's objects.
file(WRITE ${WORK}/engine_calls_io.c
     "#include <stdint.h>\nuint64_t io_monotonic_ns(void);\n"
     "uint64_t engine_clock(void);\nuint64_t engine_clock(void) { return io_monotonic_ns(); }\n")
foreach(extra "" engine_calls_io)
  set(objs ${FSM_OBJECTS})
  if(extra)
    execute_process(COMMAND ${CC} ${fsm_flags} -c ${WORK}/${extra}.c -o ${WORK}/${extra}.o)
    list(APPEND objs ${WORK}/${extra}.o)
  endif()
  # The sanitizer build's objects need the sanitizer runtimes.
  set(san "")
  if(SANITIZE)
    set(san -fsanitize=address,undefined)
  endif()
  execute_process(COMMAND ${CC} -shared ${san} -Wl,--no-undefined
                          -o ${WORK}/engine${extra}.so ${objs}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT extra AND NOT rc EQUAL 0)
    message(STATUS "FAIL  the engine's objects alone do not link:\n${out}")
    math(EXPR failures "${failures} + 1")
  elseif(extra AND rc EQUAL 0)
    message(STATUS "FAIL  engine code calling io_monotonic_ns linked without io/")
    math(EXPR failures "${failures} + 1")
  elseif(extra AND NOT out MATCHES "undefined reference to `io_monotonic_ns'")
    message(STATUS "FAIL  engine code calling io/ refused, but not for the undefined call:\n${out}")
    math(EXPR failures "${failures} + 1")
  elseif(extra)
    message(STATUS "ok    link: engine code calling io_monotonic_ns: undefined reference")
  else()
    message(STATUS "ok    link: the engine's objects alone link with --no-undefined")
  endif()
endforeach()

# The CLI and the benchmarks see include/lockstep/ only and link
# liblockstep.so, which exports only LS_API functions.
foreach(src ${API_SOURCES})
  get_filename_component(part ${src} DIRECTORY)
  flags_of(api_flags "${API_INCLUDES}")
  list(APPEND api_flags -I${SRC}/${part})   # a source's own folder (bench/common.h)
  compile(${part}_plain        api_flags ${src} "" ok)
  compile(${part}_sim_internal api_flags ${src} "#include \"backends/sim/sim_internal.h\""
          "backends/sim/sim_internal.h: No such file")
  compile(${part}_qmp_client   api_flags ${src} "#include \"qmp/qmp.h\""
          "qmp/qmp.h: No such file")
endforeach()
# A call to ls_version links; one to the library's own sim_daemon_pid (the
# work behind ls_sim_daemon_pid, declared by hand) does not.
set(san "")
if(SANITIZE)
  set(san -fsanitize=address,undefined)
endif()
foreach(call ls_version sim_daemon_pid)
  file(WRITE ${WORK}/api_${call}.c "const char *${call}(void);\n"
                                   "int main(void) { return !${call}(); }\n")
  execute_process(COMMAND ${CC} ${api_flags} ${san} ${WORK}/api_${call}.c ${API_LIBRARY}
                          -o ${WORK}/api_${call}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(call STREQUAL "ls_version" AND NOT rc EQUAL 0)
    message(STATUS "FAIL  a program calling ls_version does not link with liblockstep.so:\n${out}")
    math(EXPR failures "${failures} + 1")
  elseif(call STREQUAL "ls_version")
    message(STATUS "ok    link: a program calling ls_version links with liblockstep.so")
  elseif(rc EQUAL 0)
    message(STATUS "FAIL  a program calling the hidden ${call} linked with liblockstep.so")
    math(EXPR failures "${failures} + 1")
  elseif(NOT out MATCHES "undefined reference to `${call}'")
    message(STATUS "FAIL  calling ${call} refused, but not for the undefined call:\n${out}")
    math(EXPR failures "${failures} + 1")
  else()
    message(STATUS "ok    link: a program calling the library's hidden ${call}: undefined reference")
  endif()
endforeach()

if(failures GREATER 0)
  message(FATAL_ERROR "${failures} layering check(s) failed")
endif()
message(STATUS "every layering check passed")
