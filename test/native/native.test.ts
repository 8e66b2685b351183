/**
 * The native (C++) unit tests of the protocol core (CMake target lapps_native_tests),
 * one assertion per case. LAPPS_NATIVE_TESTS_BIN overrides the path (sanitizer build).
 */
import t from 'tap';

import { runTapBinary } from '../helpers/tap-binary.js';

runTapBinary(t, 'lapps_native_tests', 'LAPPS_NATIVE_TESTS_BIN');
