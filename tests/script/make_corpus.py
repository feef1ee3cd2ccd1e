"""Writes the corpus of model scripts (tests/script/corpus/*.alls).

The scripts are kept here as text so that the line endings of the CRLF
ones and the missing final newline of others are explicit; run this file to
rewrite the corpus after editing it.
"""
from __future__ import annotations

from pathlib import Path

CORPUS: dict[str, str] = {}

CORPUS["01_spec_example.alls"] = """\
normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
model_optimization_config(calibration, batch_size=8, calibset_size=64)
pre_quantization_optimization(equalization, policy=enabled)
post_quantization_optimization(bias_correction, policy=enabled)
quantization_param({conv*}, bias_mode=double_scale_initialization)
quantization_param({conv*}, precision_mode=a16_w16)
quantization_param(output_layer*, precision_mode=a16_w16)
"""

CORPUS["02_empty.alls"] = ""

CORPUS["03_only_comments.alls"] = """\
# This script intentionally does nothing.
#
   # indented comment

"""

CORPUS["04_no_args.alls"] = """\
set_seed()
context_switch_param()
"""

CORPUS["05_spaces_around_equals.alls"] = """\
model_optimization_config( calibration , batch_size = 4 , calibset_size = 32 )
model_optimization_flavor(optimization_level = 1, compression_level = 0)
"""

CORPUS["06_trailing_comma.alls"] = """\
quantization_param(conv1, precision_mode=a8_w8,)
normalization([0.0, 0.0, 0.0,], [255.0, 255.0, 255.0,],)
"""

CORPUS["07_dotted_command.alls"] = """\
my_context_0 = context([conv1, conv2, conv3])
my_context_0.place(0, [conv1, conv2])
my_context_1.place(1, [conv3])
"""

CORPUS["08_comments_trailing.alls"] = """\
# calibration settings
model_optimization_config(calibration, batch_size=2, calibset_size=16)  # small set
quantization_param({conv*}, precision_mode=a8_w8) # all convs 8 bit
# end
"""

CORPUS["09_blank_lines.alls"] = """\


model_optimization_flavor(optimization_level=0)



calibration(method=minmax)


"""

CORPUS["10_crlf.alls"] = (
    "normalization1 = normalization([0, 0, 0], [255, 255, 255])\r\n"
    "# a comment with CRLF\r\n"
    "quantization_param({conv*}, precision_mode=a8_w8)\r\n"
    "\r\n"
    "data_type(fc1, int16)\r\n"
)

CORPUS["11_no_final_newline.alls"] = "calibration(method=kl)\nquantization_param(conv3, precision_mode=a16_w16)"

CORPUS["12_multiline_call.alls"] = """\
normalization1 = normalization(
    [123.675, 116.28, 103.53],
    [58.395, 57.12, 57.375],
)
post_quantization_optimization(finetune,
                               policy=enabled,
                               learning_rate=0.0001,
                               epochs=4,
                               dataset_size=4000)
"""

CORPUS["13_multiline_list.alls"] = """\
quantization_param([conv1,
                    conv2,
  conv3,   # odd indentation is fine inside brackets
        conv4],
    precision_mode=a16_w16)
"""

CORPUS["14_multiline_braces.alls"] = """\
quantization_param({
    conv1,
    conv5,
    fc1
}, precision_mode=a16_w8)
"""

CORPUS["15_assignment.alls"] = """\
normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
norm_rgb = normalization([0.485, 0.456, 0.406], [0.229, 0.224, 0.225], input_layer1)
"""

CORPUS["16_scoped_target.alls"] = """\
net/normalization1 = normalization([127.5, 127.5, 127.5], [127.5, 127.5, 127.5])
yolov5s/normalization1 = normalization([0, 0, 0], [255, 255, 255])
"""

CORPUS["17_tuple_target.alls"] = """\
a, b, c = defuse(x, 2)
conv_a, conv_b = defuse(conv7, 2)
"""

CORPUS["18_dict_target.alls"] = """\
{} = defuse_block(matmul1, defuse_count=4)
{k: [a, b]} = defuse_block(matmul2, defuse_count=2)
{heads: [h1, h2, h3], tail: t1} = defuse_block(attention1)
"""

CORPUS["19_bare_names.alls"] = """\
quantization_param(conv12, precision_mode=a16_w16)
data_type(fc1, float16)
"""

CORPUS["20_scoped_names.alls"] = """\
quantization_param(yolov5s/conv12, precision_mode=a16_w16)
quantization_param([yolov5s/conv1, yolov5s/conv2], bias_mode=single_scale_decomposition)
"""

CORPUS["21_dash_dot_names.alls"] = """\
quantization_param(conv36_d0-2, precision_mode=a8_w4)
quantization_param(regnetx_1.6gf_fpn/conv4, precision_mode=a8_w8)
quantization_param({regnetx_1.6gf_fpn/conv*, conv36_d0-*}, precision_mode=a16_w8)
"""

CORPUS["22_brace_globs.alls"] = """\
quantization_param({conv*}, precision_mode=a8_w8)
quantization_param({*}, bias_mode=double_scale_initialization)
quantization_param({conv[0-9]*}, precision_mode=a16_w16)
quantization_param({conv?}, quantization_groups=2)
"""

CORPUS["23_brace_lists.alls"] = """\
quantization_param({conv1, conv5, fc1}, precision_mode=a16_w16)
data_type({conv1, conv2}, int16)
"""

CORPUS["24_bracket_layer_lists.alls"] = """\
pre_quantization_optimization(activation_clipping, layers=[net/conv1, conv2], mode=percentile, clipping_values=[0.01, 99.99])
pre_quantization_optimization(weights_clipping, layers=[conv3], mode=manual, clipping_values=[-8, 8])
"""

CORPUS["25_globs_without_braces.alls"] = """\
quantization_param(output_layer*, precision_mode=a16_w16)
quantization_param(conv1?, precision_mode=a8_w8)
"""

CORPUS["26_range.alls"] = """\
data_type({Concat_155...}, int16)
quantization_param({yolov5s/conv40...}, precision_mode=a16_w16)
"""

CORPUS["27_ints_floats.alls"] = """\
pre_quantization_optimization(weights_clipping, layers={conv*}, mode=manual, clipping_values=[-1e-5, .5])
quantization_param(conv1, force_range_out=[-6, 6.0], null_channels_cutoff_factor=1e-3)
quantization_param(conv2, force_range_in=[-.25, 2.5e2])
"""

CORPUS["28_units.alls"] = """\
allocator_param(timeout=25m)
allocator_param(timeout=1h, automatic_ddr=disabled)
performance_param(compiler_optimization_level=max, fps=30, timeout=90s)
"""

CORPUS["29_strings.alls"] = """\
quantization_overrides("encodings.json")
quantization_overrides('overrides/model.encodings')
nms_postprocess("postprocess_config/yolov5s_nms_config.json", meta_arch=yolov5, engine=cpu)
"""

CORPUS["30_enum_words.alls"] = """\
pre_quantization_optimization(equalization, policy=disabled)
compilation_param({*}, resources_allocation_strategy=manual_scs_selection)
resources_param(strategy=greedy, max_compute_utilization=0.8, layout=SPATIAL)
"""

CORPUS["31_none_bools.alls"] = """\
model_optimization_flavor(optimization_level=2, compression_level=0, batch_size=None)
calibration(method=minmax, per_channel=True)
calibration(conv1, per_channel=false)
post_quantization_optimization(bias_correction, policy=enabled, iterative=true)
pre_quantization_optimization(activation_clipping, layers={conv*}, mode=disabled, recollect_stats=False)
"""

CORPUS["32_nested_lists.alls"] = """\
nms_postprocess(meta_arch=ssd, anchors=[[10, 13], [16, 30], [33, 23]], scores=[0.25, [0.5, 0.75]])
buffers(conv1, conv2, [[1, 2], []])
"""

CORPUS["33_vendor_commands.alls"] = """\
resources_param(max_control_utilization=1.0, max_compute_utilization=1.0, max_memory_utilization=1.0)
allocator_param(merge_min_layer_utilization=0.1)
context_switch_param(mode=enabled)
performance_param(compiler_optimization_level=max)
buffers(conv4, conv5, 3)
platform_param(targets=[hailo8, hailo8l])
compilation_param(conv1, resources_allocation_strategy=min_scs_match_fps)
change_output_activation(conv42, sigmoid)
input_conversion = input_conversion(yuv_to_rgb)
reshape_yuy2 = format_conversion(input_layer1, yuy2_to_hailo_yuv)
resize_input1 = resize(resize_shapes=[480, 640])
transpose(input_layer1)
reshape(conv20, [1, 20, 20, 85])
set_seed(seed=42)
"""

CORPUS["34_npuc_calibration.alls"] = """\
calibration(method=percentile, percentile=99.99)
calibration({conv*}, method=mse, per_channel=True)
calibration([fc1], method=kl)
"""

CORPUS["35_prune_outputs.alls"] = """\
prune_after(conv_last_out)
outputs(boxes, scores)
outputs("detections/concat:0")
"""

CORPUS["36_input_shape.alls"] = """\
input_shape(images, [1, 3, 640, 640])
input_shape("x", [1, 3, 48, 192])
"""

CORPUS["37_data_type_mixed.alls"] = """\
data_type({conv1, conv2}, uint8)
data_type({conv3...}, int16)
data_type(fc*, float16)
data_type(output_layer1, int8)
"""

CORPUS["38_post_quant_all.alls"] = """\
post_quantization_optimization(bias_correction, policy=enabled)
post_quantization_optimization(finetune, policy=enabled, learning_rate=0.0001, epochs=4, batch_size=8, dataset_size=4000, loss_layer_names=[conv58, conv66], loss_types=[l2rel, l2rel], loss_factors=[1.0, 1.0])
post_quantization_optimization(adaround, policy=enabled, epochs=320, dataset_size=1024, warmup=0.2)
post_quantization_optimization(mix_precision_search, policy=enabled)
"""

CORPUS["39_pre_quant_all.alls"] = """\
pre_quantization_optimization(equalization, policy=enabled)
pre_quantization_optimization(equalization, layers={conv1, conv2}, policy=disabled)
pre_quantization_optimization(activation_clipping, layers={conv*}, mode=percentile, clipping_values=[0.01, 99.99])
pre_quantization_optimization(dead_layers_removal, policy=enabled)
pre_quantization_optimization(zero_static_channels, policy=disabled)
pre_quantization_optimization(global_avgpool_reduction, layers=avgpool1, division_factors=[4, 4])
"""

CORPUS["40_quantization_param_all.alls"] = """\
quantization_param({conv*}, precision_mode=a8_w4)
quantization_param({conv1, conv2}, precision_mode=a16_w8, bias_mode=single_scale_decomposition)
quantization_param(fc1, precision_mode=a8_w16, quantization_groups=4)
quantization_param(conv3, max_elementwise_feed_repeat=2, max_bias_feed_repeat=16)
quantization_param(conv4, precision_mode=a16_w16, force_range_out=[0.0, 6.0])
"""

CORPUS["41_yolov5_style.alls"] = """\
# yolov5s style script written for another toolchain
normalization1 = normalization([0.0, 0.0, 0.0], [255.0, 255.0, 255.0])
change_output_activation(conv70, sigmoid)
change_output_activation(conv63, sigmoid)
change_output_activation(conv55, sigmoid)
model_optimization_config(calibration, batch_size=2, calibset_size=64)
quantization_param(conv70, precision_mode=a8_w8)
nms_postprocess("../../postprocess_config/yolov5s_nms_config.json", yolov5, engine=cpu)
performance_param(compiler_optimization_level=max)
"""

CORPUS["42_resnet_style.alls"] = """\
normalization1 = normalization([123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
model_optimization_flavor(optimization_level=2, compression_level=1)
quantization_param(resnet_v1_50/fc1, precision_mode=a16_w16)
allocator_param(timeout=25m)
"""

CORPUS["43_ocr_cls.alls"] = """\
normalization1 = normalization([127.5, 127.5, 127.5], [127.5, 127.5, 127.5])
model_optimization_config(calibration, batch_size=4, calibset_size=64)
quantization_param({Conv@1*}, precision_mode=a16_w16)
quantization_param([Conv@0, MatMul@0], bias_mode=double_scale_initialization)
data_type({Concat@0...}, int16)
"""

CORPUS["44_mixed_precision.alls"] = """\
quantization_param({*}, precision_mode=a8_w8)
quantization_param({conv1, conv2, conv3}, precision_mode=a16_w16)
data_type({Concat_155...}, int16)
quantization_overrides("encodings.json")
"""

CORPUS["45_line_continuation.alls"] = """\
quantization_param(conv1, \\
    precision_mode=a16_w16)
model_optimization_config(calibration, \\
  batch_size=8)
"""

CORPUS["46_tabs.alls"] = "quantization_param(\tconv1,\tprecision_mode=a8_w8)\n\tcalibration(method=minmax)\n"

CORPUS["47_escapes.alls"] = r"""quantization_overrides("C:\\models\\enc.json")
quantization_overrides('it\'s.json')
nms_postprocess("say \"hi\"", engine=cpu)
"""

CORPUS["48_keywords_for_positionals.alls"] = """\
quantization_param(layers={conv*}, precision_mode=a8_w8)
data_type(layers=conv1, dtype=int16)
input_shape(name=images, shape=[1, 3, 224, 224])
"""

CORPUS["49_long_script.alls"] = "".join(
    f"quantization_param(conv{i}, precision_mode={'a16_w16' if i % 3 == 0 else 'a8_w8'})  # layer {i}\n" for i in range(1, 61)
)

CORPUS["50_bom_and_crlf_no_newline.alls"] = "\ufeffcalibration(method=mse)\r\ndata_type(fc1, int16)"


def main() -> None:
    out = Path(__file__).parent / "corpus"
    out.mkdir(exist_ok=True)
    for name, text in CORPUS.items():
        (out / name).write_bytes(text.encode("utf-8"))


if __name__ == "__main__":
    main()
