# Every external dependency is found here, and only here. All come from
# Debian packages (scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)

set(HDF5_PREFER_PARALLEL OFF)
find_package(HDF5 REQUIRED COMPONENTS C HL)
add_library(ckpt::hdf5 INTERFACE IMPORTED)
target_include_directories(ckpt::hdf5 INTERFACE ${HDF5_C_INCLUDE_DIRS})
target_link_libraries(ckpt::hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_HL_LIBRARIES})
target_compile_definitions(ckpt::hdf5 INTERFACE ${HDF5_C_DEFINITIONS} H5_USE_110_API)

find_package(MPI REQUIRED COMPONENTS C)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options)
find_package(Threads REQUIRED)

pkg_check_modules(HWLOC REQUIRED IMPORTED_TARGET hwloc)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)

if(CKPT_TESTS)
  find_package(GTest REQUIRED)
endif()
