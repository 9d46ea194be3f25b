FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BRIGHTBACK_VAR_DIR=/var/lib/brightback
WORKDIR /app
# The whole build context but what .dockerignore leaves out (tests, test servers, benchmarks, local
# state): a new package is in the image without a line here. CI rebuilds this tree and runs the steps
# below on it (.ci/image-check).
COPY . .
RUN pip install --no-cache-dir -e . \
 && SECRET_KEY=build-only python manage.py collectstatic --noinput \
 && useradd --system --home /app brightback && mkdir -p $BRIGHTBACK_VAR_DIR && chown brightback $BRIGHTBACK_VAR_DIR
USER brightback
EXPOSE 8000
CMD ["gunicorn", "brightback_site.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
