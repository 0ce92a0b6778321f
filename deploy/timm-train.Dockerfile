# timm's own training script, for runs that outgrow one machine (deploy/pytorchjob.yaml runs it with torchrun).
# tsimm writes its recipe as args.yaml in the run directory; `train.py --config args.yaml` reads it.
#
#   docker build -f deploy/timm-train.Dockerfile -t timm-train:0.9.16 deploy/
#
# timm 0.9.16 is the version tsimm's args.yaml names are checked against (test/data/timm-0.9.16-train-args.txt).
FROM pytorch/pytorch:2.2.2-cuda12.1-cudnn8-runtime
RUN pip install --no-cache-dir timm==0.9.16 pyyaml
# train.py is not in the pip package: the tagged script from timm's repository.
ADD https://raw.githubusercontent.com/huggingface/pytorch-image-models/v0.9.16/train.py /opt/timm/train.py
WORKDIR /opt/timm
