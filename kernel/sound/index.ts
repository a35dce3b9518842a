/**
 * The sound subsystem (DESIGN.md §5 "Subsystems: sound"): an ALSA-like PCM layer — cards, PCM
 * devices and substreams, the snd_pcm_ops a driver provides, hw constraints, buffer memory, the
 * position machinery with snd_pcm_period_elapsed — and the harness's ALSA client (`pcmUser`).
 * See docs/sound.md.
 */

export * from './asound.js'
export {
  SndCard, snd_card_new, snd_devm_card_new, snd_card_register, snd_card_set_id, snd_card_disconnect, snd_card_free,
  snd_card_free_when_closed,
} from './core.js'
export {
  SndPcm, SndPcmStr, SndPcmSubstream, SndPcmRuntime,
  snd_pcm_new, snd_pcm_set_ops, snd_pcm_substream_chip, snd_pcm_chip, snd_pcm_running, snd_pcm_stream_linked,
  snd_pcm_group_for_each_entry, snd_pcm_trigger_done,
  snd_pcm_stream_lock, snd_pcm_stream_unlock, snd_pcm_stream_lock_irq, snd_pcm_stream_unlock_irq,
  snd_pcm_stream_lock_irqsave, snd_pcm_stream_unlock_irqrestore,
  bytes_to_frames, frames_to_bytes, bytes_to_samples, samples_to_bytes, frame_aligned,
  snd_pcm_lib_buffer_bytes, snd_pcm_lib_period_bytes,
  snd_pcm_playback_avail, snd_pcm_capture_avail, snd_pcm_playback_hw_avail, snd_pcm_capture_hw_avail, snd_pcm_avail,
  snd_pcm_hw_avail, snd_pcm_playback_ready, snd_pcm_capture_ready, snd_pcm_playback_data, snd_pcm_playback_empty,
  snd_pcm_capture_empty, snd_pcm_get_dma_buf, snd_sgbuf_get_addr, snd_sgbuf_get_chunk_size, snd_pcm_sgbuf_get_addr,
  snd_pcm_set_runtime_buffer,
  type SndPcmOps, type SndPcmHardware, type SndDmaBuffer, type SubstreamStats, type snd_pcm_uframes_t,
  type snd_pcm_sframes_t,
} from './pcm.js'
export {
  SndPcmHwParams, snd_interval_any, snd_interval_refine, snd_interval_list, snd_interval_value, hw_param_interval,
  hw_param_interval_c,
  params_access, params_format, params_subformat, params_channels, params_rate, params_period_size,
  params_period_bytes, params_periods, params_buffer_size, params_buffer_bytes, params_width, params_physical_width,
  params_period_time, params_buffer_time,
  snd_pcm_hw_constraint_integer, snd_pcm_hw_constraint_minmax, snd_pcm_hw_constraint_single,
  snd_pcm_hw_constraint_mask, snd_pcm_hw_constraint_mask64, snd_pcm_hw_constraint_step, snd_pcm_hw_constraint_pow2,
  snd_pcm_hw_constraint_list, snd_pcm_hw_constraint_ranges, snd_pcm_hw_constraint_msbits, snd_pcm_hw_rule_add,
  snd_pcm_limit_hw_rates,
  type SndInterval, type SndPcmHwRule, type SndPcmHwConstraintList, type SndPcmHwConstraintRanges,
} from './pcm_params.js'
export {
  SND_MAXIMUM_SUBSTREAMS, SND_MINIMUM_BUFFER, SND_MAX_ALLOC_PER_CARD,
  snd_dma_alloc_pages, snd_dma_free_pages, snd_pcm_lib_preallocate_pages, snd_pcm_lib_preallocate_pages_for_all,
  snd_pcm_set_managed_buffer, snd_pcm_set_managed_buffer_all, snd_pcm_lib_preallocate_free,
  snd_pcm_lib_preallocate_free_for_all, snd_pcm_lib_malloc_pages, snd_pcm_lib_free_pages,
} from './pcm_memory.js'
export {
  snd_pcm_period_elapsed, snd_pcm_period_elapsed_under_stream_lock, snd_pcm_stop_xrun, snd_pcm_update_hw_ptr,
} from './pcm_lib.js'
export { snd_pcm_start, snd_pcm_stop, snd_pcm_drain_done, SND_PCM_BOUNDARY_LIMIT } from './pcm_native.js'
export {
  pcmUser, PcmUser, PcmHandle, PcmError,
  type PcmParams, type PcmStatus, type PcmCardInfo, type PcmDeviceInfo, type PlayResult, type RecordResult,
  type PcmOpenOptions, type PcmStreamName,
} from './user.js'
