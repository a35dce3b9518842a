/**
 * The block subsystem (DESIGN.md §5 "Subsystems: block"): what block drivers use — tag sets,
 * disks, requests, blk-mq — and the harness's block user space (`blockUser`) with its fio-like
 * workload generator. See docs/block.md.
 */

export * from './blk_types.js'
export { ERR_PTR, IS_ERR, IS_ERR_OR_NULL, PTR_ERR, type ErrPtr } from './err.js'
export {
  Bio, BIO_MAX_VECS, bio_alloc, bio_reset, bio_add_page, bio_put, bio_op, bio_sectors, bio_has_data, bio_chain, bio_endio,
  bio_io_error, bvec_phys, bvec_virt, dma_map_bvec,
  type BioVec, type BvecIter, type bio_end_io_t,
} from './bio.js'
export {
  Request, RequestQueue, BlkMqHwCtx, BlkMqTags,
  req_op, rq_data_dir, rq_dma_dir, blk_rq_pos, blk_rq_bytes, blk_rq_sectors, blk_rq_cur_bytes, blk_rq_payload_bytes,
  blk_rq_nr_phys_segments, blk_rq_is_passthrough, req_bvec, blk_rq_nr_bvecs, rq_for_each_segment, rq_for_each_bvec,
  blk_mq_rq_to_pdu, blk_mq_rq_from_pdu, blk_mq_unique_tag, blk_mq_unique_tag_to_hwq, blk_mq_unique_tag_to_tag,
  blk_mq_rq_state, blk_mq_request_started, blk_mq_request_completed, blk_mq_set_request_complete,
  queue_logical_block_size, queue_max_hw_sectors, queue_max_segments, queue_max_segment_size, queue_virt_boundary,
  queue_dma_alignment, hctx_queuedata,
  type BlkMqOps, type BlkMqQueueData, type BlkMqTagSet, type BlkMqQueueMap, type QueueLimits, type HctxStats,
  type QueueStats, type RqEndIoFn,
} from './request.js'
export {
  blk_mq_alloc_tag_set, blk_mq_free_tag_set, blk_mq_tag_to_rq, blk_mq_tagset_busy_iter,
  blk_mq_tagset_wait_completed_request, blk_mq_map_queues,
} from './blk-mq-tag.js'
export {
  BLK_DEFAULT_TIMEOUT, blk_queue_logical_block_size, blk_queue_physical_block_size, blk_queue_max_hw_sectors,
  blk_queue_max_segments, blk_queue_max_segment_size, blk_queue_segment_boundary, blk_queue_virt_boundary,
  blk_queue_dma_alignment, blk_queue_max_write_zeroes_sectors, blk_queue_max_discard_sectors, blk_queue_write_cache,
  blk_queue_rq_timeout, queue_limits_start_update, queue_limits_commit_update, blk_queue_fua,
} from './blk-settings.js'
export { blk_rq_map_sg } from './blk-merge.js'
export {
  BLK_MAX_REQUEST_COUNT, blk_start_plug, blk_finish_plug,
  blk_mq_start_request, blk_mq_complete_request, blk_mq_complete_request_remote, blk_mq_end_request,
  __blk_mq_end_request, blk_mq_requeue_request, blk_mq_kick_requeue_list, blk_mq_delay_kick_requeue_list,
  blk_mq_stop_hw_queue, blk_mq_stop_hw_queues, blk_mq_hw_queue_stopped, blk_mq_start_hw_queue, blk_mq_start_hw_queues,
  blk_mq_start_stopped_hw_queue, blk_mq_start_stopped_hw_queues, blk_mq_run_hw_queue, blk_mq_run_hw_queues,
  blk_mq_delay_run_hw_queue, blk_mq_delay_run_hw_queues,
  blk_mq_quiesce_queue, blk_mq_quiesce_queue_nowait, blk_mq_unquiesce_queue, blk_queue_quiesced,
  blk_mq_quiesce_tagset, blk_mq_unquiesce_tagset, blk_mq_wait_quiesce_done,
  blk_freeze_queue_start, blk_mq_freeze_queue_wait, blk_mq_freeze_queue_wait_timeout, blk_mq_freeze_queue,
  blk_mq_unfreeze_queue,
  blk_mq_alloc_queue, blk_mq_init_queue, blk_mq_destroy_queue, blk_put_queue,
  blk_mq_alloc_request, blk_mq_free_request, blk_rq_map_kern, blk_execute_rq_nowait, blk_execute_rq,
  type BlkPlug,
} from './blk-mq.js'
export { submit_bio, submit_bio_wait } from './blk-core.js'
export {
  Gendisk, DISK_NAME_LEN, blk_mq_alloc_disk, add_disk, device_add_disk, del_gendisk, put_disk, set_capacity,
  set_capacity_and_notify, get_capacity, set_disk_ro, get_disk_ro,
  type DiskStat,
} from './genhd.js'
export {
  blockUser, BlockUser, BlockIoError,
  type DiskInfo, type DiskStats, type IoOptions, type IoRequest, type IoResult, type BlockOp,
} from './user.js'
export { fio, FioVerifyState, type FioOptions, type FioResult, type FioRw, type FioLatency } from './fio.js'
