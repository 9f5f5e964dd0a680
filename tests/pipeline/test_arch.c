/* test_arch.c - the family descriptors (pipeline/arch/aw_arch.h): tensor
 * names and shapes as the families' checkpoints spell them, parameter counts
 * against the published ones, widths, and the row map of a grouped-query
 * fold. The OPT names and counts here are those of the io API they replaced:
 * every expected value is pinned. */
#include <stdio.h>
#include <string.h>

#include "aw_arch.h"
#include "aw_config.h"
#include "testutil.h"

typedef struct {
    int ndim;
    int64_t s0, s1;
} want_shape;

static void assert_shape(const aw_model_config *c, aw_tensor_ref r, want_shape w, const char *what)
{
    int ndim = -1;
    int64_t shape[2] = {-1, -1};
    aw_arch_tensor_shape(c, r, &ndim, shape);
    if (ndim != w.ndim || shape[0] != w.s0 || (ndim == 2 && shape[1] != w.s1))
        fail_msg("%s: shape %d [%lld, %lld], want %d [%lld, %lld]", what, ndim, (long long)shape[0],
                 (long long)shape[1], w.ndim, (long long)w.s0, (long long)w.s1);
}

static uint64_t numel(const aw_model_config *c, aw_tensor_ref r)
{
    int ndim;
    int64_t shape[2];
    aw_arch_tensor_shape(c, r, &ndim, shape);
    return (uint64_t)shape[0] * (uint64_t)(ndim == 2 ? shape[1] : 1);
}

/* The block's tensors the checkpoint holds, as the model loader and the
 * writer filter the descriptor's list; their names at layer into names. */
static int block_tensors(const aw_model_config *c, int layer, aw_tensor_ref *refs,
                         char names[][96])
{
    const aw_arch *a = aw_arch_of(c);
    int n = 0;
    for (int i = 0; i < a->n_block_tensors; i++) {
        aw_tensor_ref r = a->block_tensors[i];
        if (r.kind == AW_T_LIN_B && !aw_arch_has_linear_bias(c, r.index)) continue;
        if (r.kind == AW_T_NORM_B && !aw_arch_has_norm_bias(c)) continue;
        refs[n] = r;
        assert_true(aw_arch_tensor_name(c, layer, r, names[n], 96) > 0);
        n++;
    }
    return n;
}

/* Sum of every tensor the checkpoint holds (a tied head is the embedding). */
static uint64_t listed_params(const aw_model_config *c)
{
    const aw_arch *a = aw_arch_of(c);
    uint64_t n = 0;
    for (int i = 0; i < a->n_end_tensors; i++) {
        aw_tensor_ref r = a->end_tensors[i];
        if (r.kind == AW_T_HEAD && c->tie_word_embeddings) continue;
        n += numel(c, r);
    }
    aw_tensor_ref refs[AW_BLOCK_TENSOR_MAX];
    char names[AW_BLOCK_TENSOR_MAX][96];
    int k = block_tensors(c, 0, refs, names);
    uint64_t block = 0;
    for (int i = 0; i < k; i++) block += numel(c, refs[i]);
    return n + (uint64_t)c->num_hidden_layers * block;
}

/* A small LLaMA with grouped-query attention: 8 heads of 8 over 4 KV heads. */
static aw_model_config gqa_config(void)
{
    aw_model_config c = *aw_shape_find("llama-160m");
    c.name[0] = '\0';
    c.hidden_size = 64;
    c.word_embed_proj_dim = 64;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 4;
    c.head_dim = 8;
    c.ffn_dim = 96;
    c.num_hidden_layers = 2;
    c.vocab_size = 100;
    return c;
}

/* ---- descriptors ------------------------------------------------------------- */

static void test_descriptor(void **state)
{
    (void)state;
    const aw_model_config *opt = aw_shape_find("opt-125m");
    const aw_model_config *l3 = aw_shape_find("llama-3-8b");
    assert_ptr_equal(aw_arch_of(opt), &aw_arch_opt);
    assert_ptr_equal(aw_arch_of(l3), &aw_arch_llama);
    assert_int_equal(aw_arch_opt.family, AW_FAMILY_OPT);
    assert_int_equal(aw_arch_llama.family, AW_FAMILY_LLAMA);

    static const char *const opt_lin[] = {"q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"};
    static const char *const llama_lin[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                            "gate_proj", "up_proj", "down_proj"};
    assert_int_equal(aw_arch_opt.n_lin, 6);
    for (int l = 0; l < 6; l++) assert_string_equal(aw_arch_linear_short(&aw_arch_opt, l), opt_lin[l]);
    assert_int_equal(aw_arch_llama.n_lin, 7);
    for (int l = 0; l < 7; l++)
        assert_string_equal(aw_arch_linear_short(&aw_arch_llama, l), llama_lin[l]);

    /* OPT: LayerNorm with bias, linear biases per enable_bias */
    assert_int_equal(aw_arch_opt.norm, AW_NORM_LAYER);
    assert_int_equal(aw_arch_has_norm_bias(opt), 1);
    aw_model_config nb = *opt;
    for (int l = 0; l < 6; l++) {
        assert_int_equal(aw_arch_has_linear_bias(opt, l), 1);
        nb.enable_bias = 0;
        assert_int_equal(aw_arch_has_linear_bias(&nb, l), 0);
    }
    /* LLaMA: RMSNorm, gain only; attention_bias on q/k/v/o, mlp_bias on the MLP */
    assert_int_equal(aw_arch_llama.norm, AW_NORM_RMS);
    assert_int_equal(aw_arch_has_norm_bias(l3), 0);
    aw_model_config ab = *l3, mb = *l3;
    ab.attention_bias = 1;
    mb.mlp_bias = 1;
    for (int l = 0; l < 7; l++) {
        assert_int_equal(aw_arch_has_linear_bias(l3, l), 0);
        assert_int_equal(aw_arch_has_linear_bias(&ab, l), l < 4);
        assert_int_equal(aw_arch_has_linear_bias(&mb, l), l >= 4);
    }

    /* widths */
    assert_int_equal(aw_arch_dim(l3, AW_DIM_MODEL), 4096);
    assert_int_equal(aw_arch_dim(l3, AW_DIM_KV), 1024); /* 8 KV heads of 128 */
    assert_int_equal(aw_arch_dim(l3, AW_DIM_FFN), 14336);
    assert_int_equal(aw_arch_dim(opt, AW_DIM_KV), 768);
    static const int opt_tap[AW_TAP_COUNT] = {768, 768, 768, 3072};
    static const int l3_tap[AW_TAP_COUNT] = {4096, 4096, 4096, 14336};
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        assert_int_equal(aw_arch_tap_width(opt, (aw_tap_id)t), opt_tap[t]);
        assert_int_equal(aw_arch_tap_width(l3, (aw_tap_id)t), l3_tap[t]);
    }
    assert_int_equal(aw_arch_max_width(opt), 3072);
    assert_int_equal(aw_arch_max_width(l3), 14336);
    assert_int_equal(aw_arch_max_linear(opt), 768u * 3072u);
    assert_int_equal(aw_arch_max_linear(l3), 4096u * 14336u);
    /* 4*768^2 + 2*768*3072 */
    assert_int_equal(aw_arch_linear_params(opt), 7077888ull);
    /* 2*4096^2 + 2*4096*1024 + 3*4096*14336 */
    assert_int_equal(aw_arch_linear_params(l3), 218103808ull);
}

/* ---- parameter counts ------------------------------------------------------------ */

static void test_param_count(void **state)
{
    (void)state;
    const aw_model_config *s = aw_shape_find("opt-125m");
    /* 4*768*768 + 4*768 + 2*768*3072 + 3072 + 768 + 4*768 */
    assert_int_equal(aw_config_block_params(s), 7087872ull);
    /* 50272*768 + 2050*768 + 12*7,087,872 + 1536 */
    assert_int_equal(aw_config_param_count(s), 125239296ull);

    s = aw_shape_find("opt-175b");
    /* block: 4*12288^2 = 603,979,776; 2*12288*49152 = 1,207,959,552;
     * 4d + ffn + d + 4d = 49,152 + 49,152 + 12,288 + 49,152 = 159,744;
     * sum 1,812,099,072 */
    assert_int_equal(aw_config_block_params(s), 1812099072ull);
    /* 50272*12288 = 617,742,336; 2050*12288 = 25,190,400;
     * 96 * 1,812,099,072 = 173,961,510,912; final LN 24,576 */
    assert_int_equal(aw_config_param_count(s), 174604468224ull);
    assert_true(aw_config_param_count(s) > 174000000000ull &&
                aw_config_param_count(s) < 176000000000ull);

    /* opt-350m: no final LN (post-LN), project_in/out 2*1024*512 */
    s = aw_shape_find("opt-350m");
    assert_int_equal(aw_config_param_count(s),
                     50272ull * 512 + 2050ull * 1024 + 24ull * 12596224 + 2ull * 1024 * 512);

    /* The published counts of the meta-llama checkpoints. llama-3-8b:
     * block 2*4096^2 + 2*4096*1024 + 3*4096*14336 + 2*4096 = 218,112,000;
     * 32 blocks 6,979,584,000 + embed and head 2*128256*4096 = 1,050,673,152
     * + final norm 4096 */
    s = aw_shape_find("llama-3-8b");
    assert_int_equal(aw_config_block_params(s), 218112000ull);
    assert_int_equal(aw_config_param_count(s), 8030261248ull);
    /* llama-3-70b: block 2*8192^2 + 2*8192*1024 + 3*8192*28672 + 2*8192
     * = 855,654,400; 80 of them + 2*128256*8192 + 8192 */
    s = aw_shape_find("llama-3-70b");
    assert_int_equal(aw_config_block_params(s), 855654400ull);
    assert_int_equal(aw_config_param_count(s), 70553706496ull);
    /* llama-2-7b: block 4*4096^2 + 3*4096*11008 + 2*4096 = 202,383,360;
     * 32 of them + 2*32000*4096 + 4096 */
    s = aw_shape_find("llama-2-7b");
    assert_int_equal(aw_config_block_params(s), 202383360ull);
    assert_int_equal(aw_config_param_count(s), 6738415616ull);

    /* a tied head is counted once */
    aw_model_config t = *aw_shape_find("llama-3-8b");
    t.tie_word_embeddings = 1;
    assert_int_equal(aw_config_param_count(&t), 8030261248ull - 128256ull * 4096);
    /* biases add their outputs: q, o 4096; k, v 1024; gate, up 14336; down 4096 */
    t = *aw_shape_find("llama-3-8b");
    t.attention_bias = 1;
    assert_int_equal(aw_config_block_params(&t), 218112000ull + 2 * 4096 + 2 * 1024);
    t.mlp_bias = 1;
    assert_int_equal(aw_config_block_params(&t),
                     218112000ull + 2 * 4096 + 2 * 1024 + 2 * 14336 + 4096);
}

static void test_shape_counts(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint64_t block, total;
    } want[] = {
        /* totals match the Hugging Face checkpoints' parameter counts */
        {"opt-125m", 7087872ull, 125239296ull},
        {"opt-350m", 12596224ull, 331196416ull},
        {"opt-1.3b", 50358272ull, 1315758080ull},
        {"opt-2.7b", 78676480ull, 2651596800ull},
        {"opt-6.7b", 201379840ull, 6658473984ull},
        {"opt-13b", 314639360ull, 12853473280ull},
        {"opt-30b", 616655872ull, 29974540288ull},
        {"opt-66b", 1019335680ull, 65719701504ull},
        {"opt-175b", 1812099072ull, 174604468224ull},
        {"llama-3-8b", 218112000ull, 8030261248ull},
        {"llama-3-70b", 855654400ull, 70553706496ull},
        /* 2*16384^2 + 2*16384*1024 + 3*16384*53248 + 2*16384 = 3,187,703,808;
         * 126 of them + 2*128256*16384 + 16384 */
        {"llama-3-405b", 3187703808ull, 405853388800ull},
        {"llama-2-7b", 202383360ull, 6738415616ull},
        /* 2*768^2 + 2*768*256 + 3*768*2048 + 2*768 = 6,292,992; 12 of them
         * + 2*32000*768 + 768 */
        {"llama-160m", 6292992ull, 124668672ull},
    };
    assert_int_equal(aw_shape_count(), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const aw_model_config *s = aw_shape_find(want[i].name);
        assert_non_null(s);
        assert_int_equal(aw_config_block_params(s), want[i].block);
        assert_int_equal(aw_config_param_count(s), want[i].total);
        /* the tensors a checkpoint of it holds add up to the count (but
         * opt-350m's project_in/out, which the descriptor does not list) */
        if (strcmp(want[i].name, "opt-350m") != 0) assert_int_equal(listed_params(s), want[i].total);
    }
}

/* ---- OPT tensor names and shapes ---------------------------------------------------- */

static void test_opt_block_tensors(void **state)
{
    (void)state;
    static const char *const names[16] = {
        "model.decoder.layers.11.self_attn.q_proj.weight",
        "model.decoder.layers.11.self_attn.q_proj.bias",
        "model.decoder.layers.11.self_attn.k_proj.weight",
        "model.decoder.layers.11.self_attn.k_proj.bias",
        "model.decoder.layers.11.self_attn.v_proj.weight",
        "model.decoder.layers.11.self_attn.v_proj.bias",
        "model.decoder.layers.11.self_attn.out_proj.weight",
        "model.decoder.layers.11.self_attn.out_proj.bias",
        "model.decoder.layers.11.self_attn_layer_norm.weight",
        "model.decoder.layers.11.self_attn_layer_norm.bias",
        "model.decoder.layers.11.fc1.weight",
        "model.decoder.layers.11.fc1.bias",
        "model.decoder.layers.11.fc2.weight",
        "model.decoder.layers.11.fc2.bias",
        "model.decoder.layers.11.final_layer_norm.weight",
        "model.decoder.layers.11.final_layer_norm.bias",
    };
    static const want_shape shapes[16] = {
        {2, 768, 768}, {1, 768, 0}, {2, 768, 768}, {1, 768, 0},
        {2, 768, 768}, {1, 768, 0}, {2, 768, 768}, {1, 768, 0},
        {1, 768, 0},   {1, 768, 0}, {2, 3072, 768}, {1, 3072, 0},
        {2, 768, 3072}, {1, 768, 0}, {1, 768, 0},  {1, 768, 0},
    };
    const aw_model_config *c = aw_shape_find("opt-125m");
    const aw_arch *a = aw_arch_of(c);
    assert_int_equal(a->n_block_tensors, 16);
    aw_tensor_ref refs[AW_BLOCK_TENSOR_MAX];
    char got[AW_BLOCK_TENSOR_MAX][96];
    assert_int_equal(block_tensors(c, 11, refs, got), 16); /* all listed */
    char buf[128];
    uint64_t sum = 0;
    for (int i = 0; i < 16; i++) {
        int n = aw_arch_tensor_name(c, 11, a->block_tensors[i], buf, sizeof buf);
        assert_int_equal(n, (int)strlen(names[i]));
        assert_string_equal(buf, names[i]);
        assert_shape(c, a->block_tensors[i], shapes[i], names[i]);
        sum += numel(c, a->block_tensors[i]);
    }
    /* the 16 tensors add up to the block count */
    assert_int_equal(sum, aw_config_block_params(c));

    aw_tensor_ref qw = {AW_T_LIN_W, 0};
    assert_int_equal(aw_arch_tensor_name(c, 0, qw, buf, sizeof buf),
                     (int)strlen("model.decoder.layers.0.self_attn.q_proj.weight"));
    assert_string_equal(buf, "model.decoder.layers.0.self_attn.q_proj.weight");

    /* enable_bias=false: the biases are not in the checkpoint */
    aw_model_config nb = *c;
    nb.enable_bias = 0;
    assert_int_equal(block_tensors(&nb, 0, refs, got), 10);
    for (int i = 0; i < 10; i++) assert_int_not_equal(refs[i].kind, AW_T_LIN_B);

    /* fc1/fc2 of a model where ffn != 4d would catch a swapped shape */
    aw_model_config odd = *c;
    odd.ffn_dim = 1000;
    assert_shape(&odd, (aw_tensor_ref){AW_T_LIN_W, 4}, (want_shape){2, 1000, 768}, "fc1");
    assert_shape(&odd, (aw_tensor_ref){AW_T_LIN_W, 5}, (want_shape){2, 768, 1000}, "fc2");
    assert_shape(&odd, (aw_tensor_ref){AW_T_LIN_B, 4}, (want_shape){1, 1000, 0}, "fc1 bias");
}

static void test_opt_model_tensors(void **state)
{
    (void)state;
    static const char *const names[4] = {
        "model.decoder.embed_tokens.weight",
        "model.decoder.embed_positions.weight",
        "model.decoder.final_layer_norm.weight",
        "model.decoder.final_layer_norm.bias",
    };
    static const want_shape shapes[4] = {{2, 50272, 768}, {2, 2050, 768}, {1, 768, 0}, {1, 768, 0}};
    const aw_model_config *c = aw_shape_find("opt-125m");
    const aw_arch *a = aw_arch_of(c);
    assert_int_equal(a->n_end_tensors, 4);
    char buf[128];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(aw_arch_tensor_name(c, -1, a->end_tensors[i], buf, sizeof buf),
                         (int)strlen(names[i]));
        assert_string_equal(buf, names[i]);
        assert_shape(c, a->end_tensors[i], shapes[i], names[i]);
    }
    /* the layer does not matter for the ends */
    assert_true(aw_arch_tensor_name(c, 5, a->end_tensors[0], buf, sizeof buf) > 0);
    assert_string_equal(buf, names[0]);
    /* OPT's head is the embedding: no lm_head tensor */
    assert_int_equal(aw_arch_tensor_name(c, -1, (aw_tensor_ref){AW_T_HEAD, 0}, buf, sizeof buf), -1);
    assert_int_equal(a->pos_offset, AW_OPT_POS_OFFSET);

    /* embed_tokens is [vocab, word_embed_proj_dim], positions use d */
    c = aw_shape_find("opt-350m");
    assert_shape(c, (aw_tensor_ref){AW_T_EMBED, 0}, (want_shape){2, 50272, 512}, "opt-350m embed");
    assert_shape(c, (aw_tensor_ref){AW_T_POS, 0}, (want_shape){2, 2050, 1024}, "opt-350m pos");
}

/* ---- LLaMA tensor names and shapes -------------------------------------------------- */

static void test_llama_block_tensors(void **state)
{
    (void)state;
    /* the order of Hugging Face's LlamaDecoderLayer state dict */
    static const char *const names[9] = {
        "model.layers.31.input_layernorm.weight",
        "model.layers.31.self_attn.q_proj.weight",
        "model.layers.31.self_attn.k_proj.weight",
        "model.layers.31.self_attn.v_proj.weight",
        "model.layers.31.self_attn.o_proj.weight",
        "model.layers.31.post_attention_layernorm.weight",
        "model.layers.31.mlp.gate_proj.weight",
        "model.layers.31.mlp.up_proj.weight",
        "model.layers.31.mlp.down_proj.weight",
    };
    /* grouped-query attention: k/v are [kv_heads * head_dim, d] = [1024, 4096] */
    static const want_shape shapes[9] = {
        {1, 4096, 0},      {2, 4096, 4096},  {2, 1024, 4096}, {2, 1024, 4096}, {2, 4096, 4096},
        {1, 4096, 0},      {2, 14336, 4096}, {2, 14336, 4096}, {2, 4096, 14336},
    };
    const aw_model_config *c = aw_shape_find("llama-3-8b");
    aw_tensor_ref refs[AW_BLOCK_TENSOR_MAX];
    char got[AW_BLOCK_TENSOR_MAX][96];
    assert_int_equal(block_tensors(c, 31, refs, got), 9); /* no biases */
    uint64_t sum = 0;
    for (int i = 0; i < 9; i++) {
        assert_string_equal(got[i], names[i]);
        assert_shape(c, refs[i], shapes[i], names[i]);
        sum += numel(c, refs[i]);
    }
    assert_int_equal(sum, aw_config_block_params(c));

    /* with attention_bias and mlp_bias every linear has its bias after it */
    static const char *const biased[16] = {
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.q_proj.bias",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.k_proj.bias",
        "model.layers.0.self_attn.v_proj.weight",
        "model.layers.0.self_attn.v_proj.bias",
        "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.self_attn.o_proj.bias",
        "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.gate_proj.bias",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.up_proj.bias",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.0.mlp.down_proj.bias",
    };
    aw_model_config b = *aw_shape_find("llama-160m"); /* d 768, 4 KV heads of 64, ffn 2048 */
    b.attention_bias = 1;
    b.mlp_bias = 1;
    assert_int_equal(block_tensors(&b, 0, refs, got), 16);
    sum = 0;
    for (int i = 0; i < 16; i++) {
        assert_string_equal(got[i], biased[i]);
        sum += numel(&b, refs[i]);
    }
    assert_int_equal(sum, aw_config_block_params(&b));
    assert_shape(&b, refs[2], (want_shape){1, 768, 0}, "q bias");
    assert_shape(&b, refs[3], (want_shape){2, 256, 768}, "k");
    assert_shape(&b, refs[4], (want_shape){1, 256, 0}, "k bias");
    assert_shape(&b, refs[6], (want_shape){1, 256, 0}, "v bias");
    assert_shape(&b, refs[8], (want_shape){1, 768, 0}, "o bias");
    assert_shape(&b, refs[11], (want_shape){1, 2048, 0}, "gate bias");
    assert_shape(&b, refs[15], (want_shape){1, 768, 0}, "down bias");
    /* only one of the two */
    b.mlp_bias = 0;
    assert_int_equal(block_tensors(&b, 0, refs, got), 13);
    b.mlp_bias = 1;
    b.attention_bias = 0;
    assert_int_equal(block_tensors(&b, 0, refs, got), 12);
}

static void test_llama_model_tensors(void **state)
{
    (void)state;
    static const char *const names[3] = {"model.embed_tokens.weight", "model.norm.weight",
                                         "lm_head.weight"};
    static const want_shape shapes[3] = {{2, 128256, 4096}, {1, 4096, 0}, {2, 128256, 4096}};
    const aw_model_config *c = aw_shape_find("llama-3-8b");
    const aw_arch *a = aw_arch_of(c);
    assert_int_equal(a->n_end_tensors, 3);
    char buf[128];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(aw_arch_tensor_name(c, -1, a->end_tensors[i], buf, sizeof buf),
                         (int)strlen(names[i]));
        assert_string_equal(buf, names[i]);
        assert_shape(c, a->end_tensors[i], shapes[i], names[i]);
    }
    /* RoPE: no position table, no final norm bias */
    assert_int_equal(aw_arch_tensor_name(c, -1, (aw_tensor_ref){AW_T_POS, 0}, buf, sizeof buf), -1);
    assert_string_equal(buf, "");
    assert_int_equal(aw_arch_tensor_name(c, -1, (aw_tensor_ref){AW_T_FINAL_B, 0}, buf, sizeof buf),
                     -1);
    assert_int_equal(a->pos_offset, 0);
}

/* ---- grouped-query fold rows ----------------------------------------------------------- */

static void test_row_of(void **state)
{
    (void)state;
    /* 8 query heads of 8 over 4 KV heads: channel j of the attention output
     * (query head j/8) reads KV head (j/8)/2, whose rows in v are
     * ((j/8)/2)*8 .. +8 */
    aw_model_config g = gqa_config();
    assert_int_equal(aw_arch_tap_width(&g, AW_TAP_ATTN_OUT), 64);
    assert_int_equal(aw_arch_fold_rows(&g, AW_TAP_ATTN_OUT), 32);
    for (int j = 0; j < 64; j++)
        assert_int_equal(aw_arch_row_of(&g, AW_TAP_ATTN_OUT, j), ((j / 8) / 2) * 8 + j % 8);
    /* spot values: query heads 0 and 1 share v rows 0..7, heads 6, 7 rows 24..31 */
    assert_int_equal(aw_arch_row_of(&g, AW_TAP_ATTN_OUT, 8), 0);
    assert_int_equal(aw_arch_row_of(&g, AW_TAP_ATTN_OUT, 15), 7);
    assert_int_equal(aw_arch_row_of(&g, AW_TAP_ATTN_OUT, 16), 8);
    assert_int_equal(aw_arch_row_of(&g, AW_TAP_ATTN_OUT, 63), 31);
    /* the other taps fold into a norm or into up_proj's rows: identity */
    static const aw_tap_id others[] = {AW_TAP_ATTN_IN, AW_TAP_MLP_IN, AW_TAP_MLP_MID};
    for (size_t t = 0; t < 3; t++) {
        int w = aw_arch_tap_width(&g, others[t]);
        assert_int_equal(aw_arch_fold_rows(&g, others[t]), w);
        for (int j = 0; j < w; j++) assert_int_equal(aw_arch_row_of(&g, others[t], j), j);
    }
    assert_int_equal(aw_arch_tap_width(&g, AW_TAP_MLP_MID), 96);

    /* LLaMA without GQA: identity */
    aw_model_config m = g;
    m.num_key_value_heads = 8;
    assert_int_equal(aw_arch_fold_rows(&m, AW_TAP_ATTN_OUT), 64);
    for (int j = 0; j < 64; j++) assert_int_equal(aw_arch_row_of(&m, AW_TAP_ATTN_OUT, j), j);
    /* multi-query: every channel reads the one KV head */
    m.num_key_value_heads = 1;
    assert_int_equal(aw_arch_fold_rows(&m, AW_TAP_ATTN_OUT), 8);
    for (int j = 0; j < 64; j++) assert_int_equal(aw_arch_row_of(&m, AW_TAP_ATTN_OUT, j), j % 8);

    /* OPT: identity everywhere */
    const aw_model_config *opt = aw_shape_find("opt-125m");
    for (int t = 0; t < AW_TAP_COUNT; t++) {
        int w = aw_arch_tap_width(opt, (aw_tap_id)t);
        assert_int_equal(aw_arch_fold_rows(opt, (aw_tap_id)t), w);
        for (int j = 0; j < w; j++) assert_int_equal(aw_arch_row_of(opt, (aw_tap_id)t, j), j);
    }
}

/* ---- name bounds ---------------------------------------------------------------------- */

static void test_tensor_name_bounds(void **state)
{
    (void)state;
    const aw_model_config *opt = aw_shape_find("opt-125m");
    const aw_model_config *l3 = aw_shape_find("llama-3-8b");
    aw_tensor_ref qw = {AW_T_LIN_W, 0};
    const char *opt_q = "model.decoder.layers.0.self_attn.q_proj.weight";
    const char *l3_q = "model.layers.0.self_attn.q_proj.weight";
    char buf[128];

    /* does not fit: -1 and an empty string, never a truncated name */
    memset(buf, 'x', sizeof buf);
    assert_int_equal(aw_arch_tensor_name(opt, 0, qw, buf, 20), -1);
    assert_string_equal(buf, "");
    assert_int_equal(aw_arch_tensor_name(opt, 0, qw, buf, strlen(opt_q)), -1);
    assert_int_equal(aw_arch_tensor_name(opt, 0, qw, buf, strlen(opt_q) + 1), (int)strlen(opt_q));
    assert_string_equal(buf, opt_q);
    assert_int_equal(aw_arch_tensor_name(l3, 0, qw, buf, strlen(l3_q)), -1);
    assert_string_equal(buf, "");
    assert_int_equal(aw_arch_tensor_name(l3, 0, qw, buf, strlen(l3_q) + 1), (int)strlen(l3_q));
    assert_string_equal(buf, l3_q);
    /* an end tensor too */
    assert_int_equal(aw_arch_tensor_name(l3, -1, (aw_tensor_ref){AW_T_HEAD, 0}, buf, 5), -1);
    assert_string_equal(buf, "");
    assert_int_equal(aw_arch_tensor_name(l3, 0, qw, buf, 0), -1);
    assert_int_equal(aw_arch_tensor_name(l3, 0, qw, NULL, 64), -1);

    /* no such layer, linear or norm */
    assert_int_equal(aw_arch_tensor_name(opt, -1, qw, buf, sizeof buf), -1);
    assert_int_equal(aw_arch_tensor_name(l3, -1, qw, buf, sizeof buf), -1);
    assert_int_equal(aw_arch_tensor_name(opt, 0, (aw_tensor_ref){AW_T_LIN_W, 6}, buf, sizeof buf), -1);
    assert_int_equal(aw_arch_tensor_name(l3, 0, (aw_tensor_ref){AW_T_LIN_W, 6}, buf, sizeof buf),
                     (int)strlen("model.layers.0.mlp.down_proj.weight"));
    assert_int_equal(aw_arch_tensor_name(l3, 0, (aw_tensor_ref){AW_T_LIN_B, 7}, buf, sizeof buf), -1);
    assert_int_equal(aw_arch_tensor_name(l3, 0, (aw_tensor_ref){AW_T_LIN_W, -1}, buf, sizeof buf), -1);
    assert_int_equal(aw_arch_tensor_name(opt, 0, (aw_tensor_ref){AW_T_NORM_W, 2}, buf, sizeof buf), -1);
    assert_int_equal(aw_arch_tensor_name(l3, 0, (aw_tensor_ref){AW_T_NORM_W, 2}, buf, sizeof buf), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),
        cmocka_unit_test(test_param_count),
        cmocka_unit_test(test_shape_counts),
        cmocka_unit_test(test_opt_block_tensors),
        cmocka_unit_test(test_opt_model_tensors),
        cmocka_unit_test(test_llama_block_tensors),
        cmocka_unit_test(test_llama_model_tensors),
        cmocka_unit_test(test_row_of),
        cmocka_unit_test(test_tensor_name_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
