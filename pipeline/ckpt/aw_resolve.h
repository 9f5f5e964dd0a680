/*
 * aw_resolve.h - `--model NAME_OR_DIR`: a folder as given, else a name
 * looked up in $AWEQ_MODELS/NAME and in the Hugging Face cache
 * ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub):
 * models--ORG--NAME/snapshots/<rev>/ for "ORG/NAME" (a bare NAME is
 * facebook's, as OPT's are), the revision refs/main names, else the only or
 * the last one holding a config.json.
 */
#ifndef AW_RESOLVE_H
#define AW_RESOLVE_H

#include "aw_status.h"

/* *dir: malloc'd folder. AW_ERR_CONFIG saying every place looked at. */
aw_status aw_resolve_model(const char *arg, char **dir);

#endif
