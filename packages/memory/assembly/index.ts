// @ferryvm/memory's page kernels: raw exports over the shared linear memory, no allocation.
export { buffer_is_zero, buffer_is_zero_scalar, zero_page_scan } from "./zero";
export {
  xbzrle_encode,
  xbzrle_encode_scalar,
  xbzrle_decode,
  xbzrle_decode_scalar,
} from "./xbzrle";
export { xxh64, xxh64_scalar, xxh64_pages, xxh64_pages_scalar } from "./xxhash";
export {
  find_next_bit,
  find_next_bit_scalar,
  collect_bits,
  collect_bits_scalar,
  count_bits,
  count_bits_scalar,
  sync_bitmap,
  test_and_clear_bit,
  set_bit_range,
} from "./bitmap";
export { read_pass, copy_pass } from "./bandwidth";
export { load_zero_records, page_run_records } from "./records";
