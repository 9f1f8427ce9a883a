"""The notes under the classifier tables name each run's training recipe (the pretrained
EfficientNet-Lite2 fine-tunes with its own), and jcs-joint's initialisation names the trained
parts it starts from (which profile's classifier)."""
from jcs.report.differences import differences, describe_recipe
from jcs.report.results import describe_initialisation

SGD = {"part": "cls", "optimizer": "sgd", "lr": 0.0125, "momentum": 0.9, "weight_decay": 1e-4,
       "batch_size": 32, "epochs": 16, "schedule": "step", "step_epochs": 12, "step_gamma": 0.1}
ADAMW = {"part": "cls_finetune", "optimizer": "adamw", "lr": 2e-4, "weight_decay": 0.05,
         "batch_size": 32, "epochs": 8, "schedule": "step", "step_epochs": 6, "step_gamma": 0.1}


def _run(recipe, name):
    return {"name": name, "recipe": recipe, "profile": "cpu-pretrained",
            "config": {"profile": {"cls": {"size": 224}}},
            "data": {"dataset": "ucsd-covid-ct", "splits": {"train": ["CT_COVID/a.png"] * 4}}}


def test_describe_recipe_by_hand():
    assert describe_recipe(SGD) == ("SGD lr 0.0125, momentum 0.9, weight decay 0.0001, batch 32, "
                                    "16 epochs (lr ×0.1 after 12)")
    assert describe_recipe(ADAMW) == ("AdamW lr 0.0002, decoupled weight decay 0.05, batch 32, "
                                      "8 epochs (lr ×0.1 after 6)")
    assert describe_recipe({"optimizer": "adam", "lr": 1e-3, "epochs": 3, "schedule": "poly"}) == (
        "Adam lr 0.001, 3 epochs (poly schedule)")


def test_classifier_notes_group_runs_by_recipe():
    runs = {"jcs-classifier": [_run(SGD, "jcs-classifier")],
            "jcs-classifier-pixel": [_run(SGD, "jcs-classifier-pixel")],
            "jcs-classifier-efficientnet-lite2": [_run(ADAMW, "jcs-classifier-efficientnet-lite2")]}
    (note,) = [n for n in differences(runs, "classification", initialisation=False)
               if n.startswith("Recipe")]
    assert note == ("Recipe: jcs-classifier, jcs-classifier-pixel: " + describe_recipe(SGD)
                    + "; jcs-classifier-efficientnet-lite2: fine-tuned from pretrained weights, "
                    + describe_recipe(ADAMW) + ".")
    one = {"jcs-classifier": runs["jcs-classifier"]}  # one recipe: no names
    assert f"Recipe: {describe_recipe(SGD)}." in differences(one, "classification",
                                                             initialisation=False)
    old = {"jcs-classifier": [dict(runs["jcs-classifier"][0], recipe=None)]}  # files before it
    assert not [n for n in differences(old, "classification", initialisation=False)
                if n.startswith("Recipe")]


def test_trained_parts_name_the_profile_and_seed_they_come_from():
    block = {"kind": "trained-parts", "parts": {
        "classifier": "runs/cpu/classification/jcs-classifier-pixel/seed0/model.pt",
        "segmentation": "/abs/runs/cpu-pretrained/table5/jcs-seg/seed2/model.pt"}}
    assert describe_initialisation(block) == (
        "from the trained classifier jcs-classifier-pixel (profile cpu, seed 0) and segmentation "
        "jcs-seg (profile cpu-pretrained, seed 2)")
    odd = {"kind": "trained-parts", "parts": {"classifier": "c.pt", "segmentation": "s.pt"}}
    assert describe_initialisation(odd) == "from the trained classifier and segmentation network"
    assert describe_initialisation({"kind": "trained-parts"}) == (
        "from this profile's trained classifier and segmentation network")
