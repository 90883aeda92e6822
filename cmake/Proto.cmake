# drover_proto(TARGET PROTO): compiles PROTO (a path relative to the
# repository root, e.g. backends/spawn/spawn.proto) into a static library
# TARGET. The generated header is included by that same path with .pb.h
# (e.g. "backends/spawn/spawn.pb.h"). Each .proto is self-contained: no
# imports, so that a backend's wire payload is one file a program in another
# language can compile on its own (docs/protocol.md, "Backend payloads").
function(drover_proto target proto)
  get_filename_component(dir ${proto} DIRECTORY)
  get_filename_component(stem ${proto} NAME_WE)
  set(out ${CMAKE_BINARY_DIR}/${dir})
  file(MAKE_DIRECTORY ${out})
  add_custom_command(
    OUTPUT ${out}/${stem}.pb.h ${out}/${stem}.pb.cc
    COMMAND protobuf::protoc --cpp_out=${CMAKE_BINARY_DIR} -I ${DROVER_ROOT}
            ${DROVER_ROOT}/${proto}
    DEPENDS ${DROVER_ROOT}/${proto} protobuf::protoc
    COMMENT "protoc ${proto}")
  add_library(${target} STATIC ${out}/${stem}.pb.cc)
  # Generated code is not held to the project's warning flags.
  target_compile_options(${target} PRIVATE -w)
  target_include_directories(${target} PUBLIC ${CMAKE_BINARY_DIR})
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf)
endfunction()
