# The library's layers, each a CMake object library that sees only what the
# layering allows (STYLE.md "Layout"):
#
#   engine   fsm/        the tables' dispatcher: no libuv, no I/O
#   io       io/         the stream codec, fds, the uv scheduler, the helper thread
#   qmp      qmp/        the QMP client
#   backends backends/   the hypervisors (sim client, Xen)
#   states   states/     the roles: tables and their actions
#   lib      lib/        the public API (include/lockstep/): thin wrappers
#
# A layer's sources find headers only through a directory of links made here
# (<build>/layers/<layer>/) to the parts below it, so a wrong #include fails to
# compile; the engine's also finds a uv.h that is an #error. Each layer is
# linked, with the layers below it only, into a shared object with
# -Wl,--no-undefined (<layer>_linkcheck), so calling up the stack fails the
# link. test/layers checks both rules fail as they should.

# lockstep_layer(NAME SEES path... [BELOW layer...] [FORBID dir])
#   SEES:  source-tree paths (directories or single files) the layer may
#          include; "lockstep/..." means include/lockstep/...
#   BELOW: the layers whose code it may call (linked into its link check)
#   FORBID: a directory of #error headers searched first
function(lockstep_layer name)
  cmake_parse_arguments(L "" "FORBID" "SEES;BELOW" ${ARGN})
  add_library(${name} OBJECT)
  set(stage ${CMAKE_BINARY_DIR}/layers/${name})
  file(REMOVE_RECURSE ${stage})
  foreach(path ${L_SEES})
    if(path MATCHES "^lockstep(/|$)")
      set(src ${CMAKE_SOURCE_DIR}/include/${path})
    else()
      set(src ${CMAKE_SOURCE_DIR}/${path})
    endif()
    if(NOT EXISTS ${src})
      message(FATAL_ERROR "lockstep_layer(${name}): ${path} does not exist")
    endif()
    get_filename_component(parent ${stage}/${path} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${src} ${stage}/${path} SYMBOLIC)
  endforeach()
  if(L_FORBID)
    target_include_directories(${name} BEFORE PRIVATE ${L_FORBID})
  endif()
  target_include_directories(${name} PRIVATE ${stage})
  # Everything in a layer ends up in liblockstep.so, which exports only what
  # include/lockstep/ marks LS_API.
  set_target_properties(${name} PROPERTIES POSITION_INDEPENDENT_CODE ON
                                           C_VISIBILITY_PRESET hidden)
  set_property(TARGET ${name} PROPERTY LOCKSTEP_STAGE ${stage})

  add_library(${name}_linkcheck SHARED)
  target_link_libraries(${name}_linkcheck PRIVATE ${name} ${L_BELOW})
  target_link_options(${name}_linkcheck PRIVATE -Wl,--no-undefined)
  set_target_properties(${name}_linkcheck PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/layers/linkcheck)
endfunction()

lockstep_layer(lockstep_fsm
  SEES fsm lockstep/errbuf.h lockstep/version.h
  FORBID ${CMAKE_SOURCE_DIR}/cmake/engine-forbids)
lockstep_layer(lockstep_io
  SEES fsm io lockstep/errbuf.h lockstep/version.h
  BELOW lockstep_fsm)
target_link_libraries(lockstep_io PUBLIC PkgConfig::LIBUV PkgConfig::YAJL Threads::Threads
                      PRIVATE PkgConfig::GNUTLS)   # io/tls.c
lockstep_layer(lockstep_qmp
  SEES fsm io qmp states/qmp_conn.def lockstep/errbuf.h lockstep/version.h
  BELOW lockstep_io lockstep_fsm)
target_link_libraries(lockstep_qmp PUBLIC PkgConfig::LIBUV PkgConfig::YAJL)
lockstep_layer(lockstep_backends
  SEES fsm io backends lockstep/errbuf.h lockstep/version.h lockstep/domain.h lockstep/sim.h
  BELOW lockstep_io lockstep_fsm)
target_link_libraries(lockstep_backends PUBLIC PkgConfig::YAJL Threads::Threads)
lockstep_layer(lockstep_states
  SEES fsm io qmp backends states lockstep
  BELOW lockstep_backends lockstep_qmp lockstep_io lockstep_fsm)
target_link_libraries(lockstep_states PUBLIC PkgConfig::LIBUV PkgConfig::YAJL)
lockstep_layer(lockstep_lib
  SEES fsm io qmp backends states lib lockstep
  BELOW lockstep_states lockstep_backends lockstep_qmp lockstep_io lockstep_fsm)
target_link_libraries(lockstep_lib PUBLIC PkgConfig::LIBUV)

set(LOCKSTEP_LAYERS lockstep_lib lockstep_states lockstep_backends lockstep_qmp lockstep_io
                    lockstep_fsm)
