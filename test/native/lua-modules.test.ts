/**
 * The Lua tests of the cbor, json and nljson modules (CMake target lapps_lua_tests), one
 * assertion per case. LAPPS_LUA_TESTS_BIN overrides the path (sanitizer build).
 */
import t from 'tap';

import { runTapBinary } from '../helpers/tap-binary.js';

runTapBinary(t, 'lapps_lua_tests', 'LAPPS_LUA_TESTS_BIN');
